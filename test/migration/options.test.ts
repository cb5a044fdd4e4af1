import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { DomainXml } from '../../src/domain/domain-xml.js';
import { VIR_MIGRATE_LIVE, VIR_MIGRATE_PEER2PEER, VIR_MIGRATE_PERSIST_DEST, VIR_MIGRATE_TUNNELLED, VIR_MIGRATE_UNDEFINE_SOURCE } from '../../src/generated/libvirt/constants.js';
import { normalizeTarget, planDestinationXml } from '../../src/migration/destination.js';
import { buildMigrationCall, normalizeOptions, type MigrateOptions } from '../../src/migration/options.js';

const local = { destinationIsLocal: true, persistent: false };

describe('migrate options → virDomainMigrateToURI3 parameters and flags', () => {
  it('defaults: live p2p over tcp://127.0.0.1 listening on 127.0.0.1 only, for a destination on this host', () => {
    const call = buildMigrationCall(normalizeOptions(), local);
    expect(call.flags).toBe(VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER);
    expect(call.params).toEqual([
      { field: 'migrate_uri', type: 'string', value: 'tcp://127.0.0.1' },
      { field: 'listen_address', type: 'string', value: '127.0.0.1' },
    ]);
  });

  it('a remote destination gets no guessed addresses', () => {
    expect(buildMigrationCall(normalizeOptions(), { destinationIsLocal: false, persistent: false }).params).toEqual([]);
  });

  it('tunnelled: no URI, no listen address, the TUNNELLED flag', () => {
    const call = buildMigrationCall(normalizeOptions({ tunnelled: true, bandwidthMiBs: 10 }), local);
    expect(call.flags).toBe(VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED);
    expect(call.params).toEqual([{ field: 'bandwidth', type: 'ullong', value: 10 }]);
  });

  it('unix:// migration URI: no listen address', () => {
    const call = buildMigrationCall(normalizeOptions({ migrationUri: 'unix:///tmp/b/mig.sock' }), local);
    expect(call.params).toEqual([{ field: 'migrate_uri', type: 'string', value: 'unix:///tmp/b/mig.sock' }]);
  });

  it('persistent guests: PERSIST_DEST, UNDEFINE_SOURCE by default, and the persistent XML', () => {
    const o = normalizeOptions({ live: false });
    const call = buildMigrationCall(o, { destinationIsLocal: true, persistent: true, destinationXml: '<domain/>', persistentXml: '<domain/>' });
    expect(call.flags).toBe(VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE);
    expect(call.params.map((p) => p.field)).toEqual(['migrate_uri', 'listen_address', 'destination_xml', 'persistent_xml']);
    const keep = buildMigrationCall(normalizeOptions({ undefineSource: false }), { destinationIsLocal: true, persistent: true });
    expect(keep.flags & VIR_MIGRATE_UNDEFINE_SOURCE).toBe(0);
  });

  it.each<[MigrateOptions, RegExp]>([
    [{ bandwidthMiBs: 0.5 }, /bandwidthMiBs must be an integer ≥ 1/],
    [{ tunnelled: true, migrationUri: 'tcp://127.0.0.1' }, /tunnelled migration carries the stream/],
    [{ migrationUri: 'http://x' }, /not a QEMU migration URI/],
    [{ qemuParameters: { DowntimeLimit: 5 } }, /not a QEMU parameter name/],
    [{ qemuParameters: { 'downtime-limit': {} as unknown as number } }, /must be a number, string or boolean/],
    [{ undefineSource: true, persistent: false }, /defined nowhere/],
    [{ progressIntervalMs: 1 }, /progressIntervalMs must be an integer ≥ 50/],
    [{ destinationQmpSocket: 'rel.sock' }, /must be an absolute path/],
    [{ bandwidth: 5 } as unknown as MigrateOptions, /unknown migrate option 'bandwidth'/],
    [{ watchdog: { deadlineMs: -1, action: 'abort' } }, /deadlineMs must be a positive/],
    [{ live: 'yes' } as unknown as MigrateOptions, /live must be true or false/],
  ])('rejects %j', (opts, message) => {
    expect(() => normalizeOptions(opts)).toThrow(InvalidArgumentError);
    expect(() => normalizeOptions(opts)).toThrow(message);
  });
});

describe('destination', () => {
  it.each(['', 'not a uri', 'http://host/', 42])('rejects the destination %j', (d) => {
    expect(() => normalizeTarget(d as string)).toThrow(InvalidArgumentError);
  });

  const guestXml = (sock: string) => {
    const x = DomainXml.parse(`<domain type='qemu'><name>g</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>`);
    x.addMonitorSocket(sock);
    return x.toString();
  };

  it('moves the second monitor into the destination monitor directory', async () => {
    const plan = await planDestinationXml(guestXml('/tmp/a/qmp/g.sock'), { uri: 'qemu+unix:///session?socket=/tmp/b/s', monitorDir: '/tmp/b/qmp' }, undefined);
    expect(plan.sourceSocket).toBe('/tmp/a/qmp/g.sock');
    expect(plan.destinationSocket).toBe('/tmp/b/qmp/g.sock');
    const moved = DomainXml.parse(plan.xml!);
    expect(moved.monitorSockets().map((m) => m.path)).toEqual(['/tmp/b/qmp/g.sock']);
    expect(plan.xml).not.toContain('/tmp/a/qmp/g.sock');
  });

  it('uses the default monitor directory of a local URI, creating it privately', async () => {
    const base = await mkdtemp(join(tmpdir(), 'libqemu-mig-dest-'));
    let dir: string | undefined;
    try {
      const uri = `qemu+unix:///session?socket=${base}/nonexistent-sock`;
      const plan = await planDestinationXml(guestXml('/tmp/a/qmp/g.sock'), { uri }, undefined);
      if (plan.destinationSocket) dir = dirname(plan.destinationSocket);
      expect(plan.destinationSocket).toMatch(/libqemu-qmp-\d+-[0-9a-f]{8}\/g\.sock$/);
      expect((await stat(dir!)).mode & 0o777).toBe(0o700);
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
      await rm(base, { recursive: true, force: true });
    }
  });

  it('refuses the source path as the destination path, and a remote destination without one', async () => {
    await expect(planDestinationXml(guestXml('/tmp/a/g.sock'), { uri: 'qemu:///session' }, '/tmp/a/g.sock')).rejects.toThrow(/the source's own/);
    await expect(planDestinationXml(guestXml('/tmp/a/g.sock'), { uri: 'qemu+ssh://elsewhere.example/system' }, undefined)).rejects.toThrow(/on another host/);
  });

  it('a guest without a second monitor needs no destination XML', async () => {
    const xml = `<domain type='qemu'><name>g</name></domain>`;
    expect(await planDestinationXml(xml, { uri: 'qemu:///session' }, undefined)).toEqual({ xml: undefined, sourceSocket: undefined, destinationSocket: undefined });
    await expect(planDestinationXml(xml, { uri: 'qemu:///session' }, '/tmp/x.sock')).rejects.toThrow(/no second QMP monitor/);
  });
});
