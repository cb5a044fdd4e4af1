import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, LibqemuError } from '../../src/common/errors.js';
import { PolicyError } from '../../src/hybrid/errors.js';
import { OwnershipPolicy, classifyCommand } from '../../src/hybrid/policy.js';

describe('ownership policy: classification', () => {
  it.each(['query-status', 'query-block', 'x-query-virtio', 'qom-get', 'qom-list', 'device-list-properties'])('%s is read-only', (c) => {
    expect(classifyCommand(c).kind).toBe('read-only');
  });

  it.each(['stop', 'cont', 'system_reset', 'system_powerdown'])('%s passes as a runstate change libvirt follows', (c) => {
    expect(classifyCommand(c).kind).toBe('runstate');
  });

  it.each([
    ['device_add', 'virDomainAttachDeviceFlags'],
    ['device_del', 'virDomainDetachDeviceFlags'],
    ['netdev_add', 'virDomainAttachDeviceFlags'],
    ['blockdev-add', 'virDomainAttachDeviceFlags'],
    ['blockdev-snapshot-sync', 'virDomainSnapshotCreateXML'],
    ['block-job-cancel', 'virDomainBlockJobAbort'],
    ['block-commit', 'virDomainBlockCommit'],
    ['migrate', 'virDomainMigrate3'],
    ['migrate_cancel', 'virDomainAbortJob'],
    ['migrate-set-capabilities', 'virDomainMigrate3'],
    ['quit', 'virDomainDestroy'],
    ['object-add', 'virDomainAddIOThread'],
    ['chardev-add', 'virDomainAttachDeviceFlags'],
    ['balloon', 'virDomainSetMemoryFlags'],
    ['block_resize', 'virDomainBlockResize'],
    ['nbd-server-start', 'virDomainBackupBegin'],
    ['job-dismiss', 'virDomainBlockJobAbort'],
  ])('%s is libvirt-owned and names %s', (c, api) => {
    const k = classifyCommand(c);
    expect(k.kind).toBe('libvirt-owned');
    expect(k.instead).toContain(api);
    expect(k.reason).toBeTruthy();
  });

  it('lets untracked QEMU features pass, with a note where libvirt keeps stale state', () => {
    expect(classifyCommand('set_link')).toMatchObject({ kind: 'untracked', note: expect.stringContaining('link state') });
    expect(classifyCommand('migrate-set-parameters').kind).toBe('untracked');
    expect(classifyCommand('screendump')).toEqual({ command: 'screendump', kind: 'untracked' });
  });

  it('classifies HMP lines by their first word', () => {
    expect(classifyCommand('human-monitor-command', { 'command-line': '  info status' }).kind).toBe('read-only');
    expect(classifyCommand('human-monitor-command', { 'command-line': 'stop' }).kind).toBe('runstate');
    const k = classifyCommand('human-monitor-command', { 'command-line': 'device_add e1000' });
    expect(k).toMatchObject({ kind: 'libvirt-owned', command: 'human-monitor-command: device_add' });
  });

  it('rejects a missing or empty command name', () => {
    expect(() => classifyCommand('')).toThrow(InvalidArgumentError);
    expect(() => classifyCommand(undefined as unknown as string)).toThrow(InvalidArgumentError);
  });
});

describe('ownership policy: refusals and opt-in', () => {
  it('refuses a libvirt-owned command with a PolicyError naming the libvirt API and how to opt in', () => {
    const policy = new OwnershipPolicy();
    let err: unknown;
    try {
      policy.check('device_add', { driver: 'e1000' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect(err).toBeInstanceOf(LibqemuError);
    const pe = err as PolicyError;
    expect(pe.command).toBe('device_add');
    expect(pe.instead).toContain('virDomainAttachDeviceFlags');
    expect(pe.message).toContain('device_add');
    expect(pe.hint).toContain("allow: ['device_add']");
    expect(pe.hint).toContain('allowUnsafe');
  });

  it('passes reads, runstate changes and untracked commands without opt-in', () => {
    const policy = new OwnershipPolicy();
    expect(policy.check('query-status').kind).toBe('read-only');
    expect(policy.check('stop').kind).toBe('runstate');
    expect(policy.check('set_link', { name: 'n', up: false }).kind).toBe('untracked');
  });

  it('opts in per client (a list or all) and per call', () => {
    expect(new OwnershipPolicy({ allow: ['device_add'] }).check('device_add').kind).toBe('libvirt-owned');
    expect(() => new OwnershipPolicy({ allow: ['device_add'] }).check('device_del')).toThrow(PolicyError);
    expect(new OwnershipPolicy({ allow: 'all' }).check('quit').kind).toBe('libvirt-owned');
    expect(new OwnershipPolicy().check('quit', undefined, { allowUnsafe: true }).kind).toBe('libvirt-owned');
    expect(() => new OwnershipPolicy().check('quit', undefined, { allowUnsafe: false })).toThrow(PolicyError);
  });

  it('names the HMP opt-in as human-monitor-command', () => {
    const err = (() => {
      try {
        new OwnershipPolicy().check('human-monitor-command', { 'command-line': 'quit' });
      } catch (e) {
        return e as PolicyError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PolicyError);
    expect(err!.hint).toContain("allow: ['human-monitor-command']");
    expect(new OwnershipPolicy({ allow: ['human-monitor-command'] }).check('human-monitor-command', { 'command-line': 'quit' }).kind).toBe('libvirt-owned');
  });

  it('validates its options', () => {
    expect(() => new OwnershipPolicy({ allow: 'some' as unknown as 'all' })).toThrow(InvalidArgumentError);
    expect(() => new OwnershipPolicy({ allow: [''] })).toThrow(InvalidArgumentError);
  });
});

describe('ownership policy: fd sets and named fds', () => {
  /** Runs a call through the validator the way QmpClient does: validate, then (on success) checkReply. */
  async function run(v: ReturnType<OwnershipPolicy['validator']>, command: string, args: Record<string, unknown>, reply: unknown, options = {}) {
    const call = { command, args, options };
    await v.validate?.(call);
    await v.checkReply?.(call, reply);
  }

  it('classifies the fd commands as untracked with a note saying what is allowed', () => {
    expect(classifyCommand('add-fd')).toMatchObject({ kind: 'untracked', note: expect.stringContaining('fdset-id of your own') });
    expect(classifyCommand('remove-fd')).toMatchObject({ kind: 'untracked', note: expect.stringContaining('this client created') });
    expect(classifyCommand('closefd').note).toContain('getfd');
    expect(classifyCommand('query-fdsets').kind).toBe('read-only');
  });

  it('lets a client add, extend and remove its own fd sets; refuses sets it did not create, listing whose are whose', async () => {
    const qemuSets = [{ 'fdset-id': 0 }, { 'fdset-id': 1 }]; // as if libvirt had two
    const policy = new OwnershipPolicy();
    const v = policy.validator(undefined, { queryFdsets: async () => qemuSets });
    await run(v, 'add-fd', { 'fdset-id': 1000 }, { 'fdset-id': 1000, fd: 30 });
    qemuSets.push({ 'fdset-id': 1000 });
    expect(policy.fdsets.own).toEqual([1000]);
    await run(v, 'add-fd', { 'fdset-id': 1000 }, { 'fdset-id': 1000, fd: 31 }); // into its own set
    // libvirt's set: neither added to nor removed
    const intoLibvirts = await run(v, 'add-fd', { 'fdset-id': 1 }, {}).catch((e: unknown) => e);
    expect(intoLibvirts).toBeInstanceOf(PolicyError);
    expect((intoLibvirts as PolicyError).fdsets).toEqual({ caller: [1000], others: [0, 1] });
    const removal = (await run(v, 'remove-fd', { 'fdset-id': 0 }, {}).catch((e: unknown) => e)) as PolicyError;
    expect(removal).toBeInstanceOf(PolicyError);
    expect(removal.message).toContain('fd set 0 was not created by this client');
    expect(removal.message).toContain('fd sets of libvirt or other clients: 0, 1; yours: 1000');
    expect(removal.fdsets).toEqual({ caller: [1000], others: [0, 1] });
    expect(removal.hint).toContain("allow: ['remove-fd']");
    // the synchronous check refuses the same without QEMU's list
    expect(() => policy.check('remove-fd', { 'fdset-id': 0 })).toThrow(/yours: 1000/);
    qemuSets.pop(); // QEMU drops the set with its last fd
    await run(v, 'remove-fd', { 'fdset-id': 1000 }, {});
    expect(policy.fdsets.own).toEqual([]);
  });

  it("callers that name themselves (a proxy's clients, by orderingKey) own their fd sets apart", async () => {
    const policy = new OwnershipPolicy();
    const qemuSets: { 'fdset-id': number }[] = [{ 'fdset-id': 0 }];
    const v = policy.validator(undefined, { queryFdsets: async () => qemuSets });
    const alice = { orderingKey: {} };
    const bob = { orderingKey: {} };
    await run(v, 'add-fd', { 'fdset-id': 1000 }, { 'fdset-id': 1000, fd: 30 }, alice);
    qemuSets.push({ 'fdset-id': 1000 });
    const byBob = (await run(v, 'remove-fd', { 'fdset-id': 1000 }, {}, bob).catch((e: unknown) => e)) as PolicyError;
    expect(byBob).toBeInstanceOf(PolicyError);
    expect(byBob.fdsets).toEqual({ caller: [], others: [0, 1000] });
    const intoAlices = (await run(v, 'add-fd', { 'fdset-id': 1000 }, {}, bob).catch((e: unknown) => e)) as PolicyError;
    expect(intoAlices).toBeInstanceOf(PolicyError);
    await run(v, 'add-fd', { 'fdset-id': 1000 }, { 'fdset-id': 1000, fd: 31 }, alice); // into her own set
    qemuSets.pop();
    await run(v, 'remove-fd', { 'fdset-id': 1000 }, {}, alice);
    expect(policy.fdsets.own).toEqual([]); // the client's own (no key) were never involved
  });

  it('refuses add-fd without an fdset-id (QEMU would take the id libvirt numbers next)', async () => {
    const v = new OwnershipPolicy().validator(undefined, { queryFdsets: async () => [] });
    const err = (await run(v, 'add-fd', {}, {}).catch((e: unknown) => e)) as PolicyError;
    expect(err).toBeInstanceOf(PolicyError);
    expect(err.reason).toContain('lowest free id');
    expect(err.instead).toContain('fdset-id of your own');
  });

  it("a set removed fd by fd, or still used by a block node, stays the client's until QEMU no longer lists it", async () => {
    let qemuSets = [{ 'fdset-id': 1005 }];
    const policy = new OwnershipPolicy();
    const v = policy.validator(undefined, { queryFdsets: async () => qemuSets });
    qemuSets = [];
    await run(v, 'add-fd', { 'fdset-id': 1005 }, { 'fdset-id': 1005, fd: 40 });
    qemuSets = [{ 'fdset-id': 1005 }];
    await run(v, 'remove-fd', { 'fdset-id': 1005, fd: 40 }, {});
    expect(policy.fdsets.own).toEqual([1005]); // still listed (e.g. in use by a block node)
    await run(v, 'remove-fd', { 'fdset-id': 1005 }, {}); // QEMU keeps a set a block node still uses
    expect(policy.fdsets.own).toEqual([1005]);
    qemuSets = [];
    await run(v, 'remove-fd', { 'fdset-id': 1005, fd: 41 }, {});
    expect(policy.fdsets.own).toEqual([]);
  });

  it('closes only named fds this client passed with getfd', async () => {
    const v = new OwnershipPolicy().validator();
    await expect(run(v, 'closefd', { fdname: 'migrate' }, {})).rejects.toBeInstanceOf(PolicyError);
    await run(v, 'getfd', { fdname: 'mine' }, {});
    await run(v, 'closefd', { fdname: 'mine' }, {});
    await expect(run(v, 'closefd', { fdname: 'mine' }, {})).rejects.toThrow(/was not passed by this client/);
  });

  it('an opt-in (allow or allowUnsafe) lets fd commands through unchecked and makes nothing the client owns', async () => {
    const policy = new OwnershipPolicy({ allow: ['remove-fd', 'add-fd'] });
    const v = policy.validator(undefined, { queryFdsets: async () => [{ 'fdset-id': 0 }] });
    await run(v, 'remove-fd', { 'fdset-id': 0 }, {});
    await run(v, 'add-fd', { 'fdset-id': 0 }, { 'fdset-id': 0, fd: 9 });
    expect(policy.fdsets.own).toEqual([]);
    const other = new OwnershipPolicy();
    await expect(run(other.validator(), 'remove-fd', { 'fdset-id': 0 }, {}, { allowUnsafe: true })).resolves.toBeUndefined();
    await expect(run(other.validator(), 'remove-fd', { 'fdset-id': 0 }, {})).rejects.toBeInstanceOf(PolicyError);
  });
});
