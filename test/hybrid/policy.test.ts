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
