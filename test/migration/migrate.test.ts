/**
 * guest migration between two real private libvirtds (TCG guests running the memory-dirtying kernel):
 * there and back, progress, each watchdog action on a migration that never converges, abort, an
 * unreachable destination, a busy port, and QEMU parameters set through QMP during the migration.
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../../src/migration/errors.js';
import type { MigrationProgress } from '../../src/migration/progress.js';
import { QmpClient } from '../../src/qmp/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../../src/testing/index.js';
import { Hypervisor } from '../../src/hybrid/hypervisor.js';
import type { Guest, GuestEvent } from '../../src/hybrid/index.js';
import { buildDirtyKernel, dirtyCmdline } from './guest/build.js';
import { CliProcess, runCli } from '../cli/run-cli.js';
import { destroyOn, migrate, startDirtyGuest, startPair, stateOn, type Pair, type TestGuest } from './helpers/pair.js';

const MiB = 1024 * 1024;

/** A guest that dirties 4 MiB all the time: at 2 MiB/s a pass takes ~2 s, expected downtime ~2 s > 300 ms. */
const NON_CONVERGING = { mib: 4, spin: 0 } as const;

async function collect(it: AsyncIterable<MigrationProgress>): Promise<MigrationProgress[]> {
  const out: MigrationProgress[] = [];
  for await (const p of it) out.push(p);
  return out;
}

/** The guest runs on `side` and answers on its second monitor there. */
async function expectRunningWithQmp(pair: Pair, where: 'a' | 'b', guest: { name: string }, socket: string): Promise<void> {
  expect(await stateOn(pair[where], guest.name)).toBe('running');
  expect(await stateOn(pair[where === 'a' ? 'b' : 'a'], guest.name)).toBeUndefined();
  const q = await QmpClient.connect({ path: socket });
  try {
    expect(await q.execute('query-status')).toMatchObject({ status: 'running', running: true });
  } finally {
    await q.close();
  }
}

// Migrations of TCG guests on a shared 2-core machine: generous per-test limits (the watchdog bounds each migration).
describe('guest migration between two private libvirtds', { timeout: 180_000 }, () => {
  let pair: Pair;
  const guests: TestGuest[] = [];
  const facadeGuests: string[] = [];

  beforeAll(async () => {
    pair = await startPair();
  });
  /** Directories outside the daemons' own (e.g. libqemu's default monitor directory for a URI) a test made. */
  const madeDirs: string[] = [];
  afterEach(async () => {
    // A dirtying guest keeps a core busy: none outlives its test, wherever it ended up.
    const names = [...guests.splice(0).map((g) => (void g.qmp.close().catch(() => undefined), g.name)), ...facadeGuests.splice(0)];
    await Promise.allSettled(names.flatMap((n) => [destroyOn(pair.a, n), destroyOn(pair.b, n)]));
    await Promise.all(madeDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  afterAll(async () => {
    await pair?.stop();
  });

  async function guest(opts?: { mib?: number; spin?: number }): Promise<TestGuest> {
    const g = await startDirtyGuest(pair.a, opts);
    guests.push(g);
    return g;
  }

  it('migrates there and back; the QMP route works on each side; progress shows several passes', async () => {
    const g = await guest({ mib: 8, spin: 0 });
    const job = migrate(g, pair.b);
    const progress = collect(job.progress());
    const there = await job;
    const seen = await progress;

    expect(there.destinationQmpSocket).toBe(`${pair.b.daemon.qmpDir}/${g.name}.sock`);
    await expectRunningWithQmp(pair, 'b', g, there.destinationQmpSocket!);
    // The source's client saw the guest leave: QEMU said SHUTDOWN and closed the socket.
    await g.qmp.waitForRunstate('closed', { timeoutMs: 10_000 });

    expect(there.stats.passes).toBeGreaterThanOrEqual(2);
    expect(there.stats.transferredBytes).toBeGreaterThan(8 * MiB);
    expect(there.stats.totalBytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(there.stats.downtimeMs).toBeGreaterThan(0);
    const phases = seen.map((p) => p.phase);
    expect(phases[0]).toBe('preparing');
    expect(phases).toContain('active');
    expect(phases.at(-1)).toBe('completed');
    expect(Math.max(...seen.map((p) => p.pass))).toBeGreaterThanOrEqual(2);
    // snapshots are monotonic
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.pass).toBeGreaterThanOrEqual(seen[i - 1]!.pass);
      expect(seen[i]!.elapsedMs).toBeGreaterThanOrEqual(seen[i - 1]!.elapsedMs);
    }

    // and back, through the destination's own domain and monitor
    const onB = { domain: await pair.b.conn.lookupDomain(g.name), qmp: await QmpClient.connect({ path: there.destinationQmpSocket! }) };
    const back = await migrate(onB, pair.a);
    await onB.qmp.waitForRunstate('closed', { timeoutMs: 10_000 });
    expect(back.destinationQmpSocket).toBe(g.qmpSocket);
    await expectRunningWithQmp(pair, 'a', g, back.destinationQmpSocket!);
  });

  it('tunnelled there, over a unix:// migration socket back', async () => {
    const g = await guest({ mib: 2, spin: 1000 });
    const there = await migrate(g, pair.b, { tunnelled: true });
    await expectRunningWithQmp(pair, 'b', g, there.destinationQmpSocket!);
    const onB = { domain: await pair.b.conn.lookupDomain(g.name) };
    const back = await migrate(onB, pair.a, { migrationUri: `unix://${pair.a.daemon.base}/run/mig-${g.name}.sock` });
    await expectRunningWithQmp(pair, 'a', g, back.destinationQmpSocket!);
  });

  it('watchdog abort: a migration that never converges is cancelled at the deadline; the guest stays on the source', async () => {
    const g = await guest(NON_CONVERGING);
    const job = migrate(g, pair.b, { bandwidthMiBs: 2, watchdog: { deadlineMs: 4000, action: 'abort' } });
    const progress = collect(job.progress());
    const err = await job.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).reason).toBe('deadline');
    expect((err as MigrationError).guestOnSource).toBe(true);
    expect((await progress).at(-1)?.phase).toBe('cancelled');
    expect(await stateOn(pair.a, g.name)).toBe('running');
    expect(await stateOn(pair.b, g.name)).toBeUndefined();
    // the source's monitor was never touched (the destination used its own path)
    expect(await g.qmp.execute('query-status')).toMatchObject({ status: 'running' });
  });

  it('watchdog pause: the guest is paused so the migration finishes, and runs on the destination', async () => {
    const g = await guest(NON_CONVERGING);
    const job = migrate(g, pair.b, { bandwidthMiBs: 2, watchdog: { deadlineMs: 4000, action: 'pause' } });
    const paused: MigrationProgress[] = [];
    job.onProgress((p) => p.guestPaused && paused.push(p));
    const r = await job;
    expect(r.watchdog.pausedGuest).toBe(true);
    expect(paused.length).toBeGreaterThan(0);
    await expectRunningWithQmp(pair, 'b', g, r.destinationQmpSocket!);
    await (await pair.b.conn.lookupDomain(g.name)).destroy();
  });

  it('watchdog raise-downtime: downtime-limit goes up step by step until QEMU may switch over', async () => {
    const g = await guest(NON_CONVERGING);
    const job = migrate(g, pair.b, {
      bandwidthMiBs: 2,
      watchdog: { deadlineMs: 4000, action: 'raise-downtime', stepMs: 1500, maxMs: 30_000, intervalMs: 1500 },
    });
    const limits: number[] = [];
    job.onProgress((p) => p.downtimeLimitMs !== undefined && limits.at(-1) !== p.downtimeLimitMs && limits.push(p.downtimeLimitMs));
    const r = await job;
    expect(limits[0]).toBe(1500);
    expect(r.watchdog.downtimeLimitMs).toBe(limits.at(-1));
    expect(r.watchdog.pausedGuest).toBe(false);
    // it had not converged by the deadline (the abort test shows the same set-up never does on its own)
    expect(r.durationMs).toBeGreaterThan(4000);
    await expectRunningWithQmp(pair, 'b', g, r.destinationQmpSocket!);
    await (await pair.b.conn.lookupDomain(g.name)).destroy();
  });

  it('abort() mid-way: the migration is cancelled and the guest keeps running on the source', async () => {
    const g = await guest(NON_CONVERGING);
    const job = migrate(g, pair.b, { bandwidthMiBs: 2 });
    for await (const p of job.progress()) if (p.pass >= 1 && p.phase === 'active') break;
    await job.abort();
    const err = await job.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).reason).toBe('aborted');
    expect((err as MigrationError).guestOnSource).toBe(true);
    expect(await stateOn(pair.a, g.name)).toBe('running');
    expect(await stateOn(pair.b, g.name)).toBeUndefined();
    expect(await g.qmp.execute('query-status')).toMatchObject({ status: 'running' });
  });

  it('abort() while libvirt is still preparing the destination: cancelled all the same', async () => {
    const g = await guest({ mib: 1, spin: 1000 });
    const job = migrate(g, pair.b);
    const aborted = job.abort();
    await expect(job.result).rejects.toMatchObject({ reason: 'aborted', guestOnSource: true });
    await aborted;
    expect(await stateOn(pair.a, g.name)).toBe('running');
    expect(await stateOn(pair.b, g.name)).toBeUndefined();
  });

  it('a QEMU parameter set through QMP during the migration is what QEMU uses (libvirt would overwrite it before)', async () => {
    const g = await guest(NON_CONVERGING);
    const maxBandwidth = 1536 * 1024; // 1.5 MiB/s: not expressible in libvirt's whole MiB/s
    const job = migrate(g, pair.b, { bandwidthMiBs: 1, qemuParameters: { 'max-bandwidth': maxBandwidth, 'x-checkpoint-delay': 15_000 } });
    for await (const p of job.progress()) if (p.phase === 'active' && p.transferredBytes > 0) break;
    const params = (await g.qmp.execute('query-migrate-parameters')) as Record<string, unknown>;
    expect(params['max-bandwidth']).toBe(maxBandwidth);
    expect(params['x-checkpoint-delay']).toBe(15_000);
    await job.abort();
    await expect(job.result).rejects.toMatchObject({ reason: 'aborted' });
  });

  it('a QEMU parameter this QEMU does not know is refused before anything starts', async () => {
    const g = await guest({ mib: 1, spin: 1000 });
    const job = migrate(g, pair.b, { qemuParameters: { 'x-no-such-parameter': 1 } });
    await expect(job.result).rejects.toMatchObject({ reason: 'unsupported', guestOnSource: true });
    await expect(job.result).rejects.toThrow(/'x-no-such-parameter'/);
    expect(await stateOn(pair.a, g.name)).toBe('running');
  });

  it('a parameter QEMU refuses at the start of the migration cancels it, with QEMU\'s reason', async () => {
    const g = await guest(NON_CONVERGING);
    const job = migrate(g, pair.b, { bandwidthMiBs: 2, qemuParameters: { 'downtime-limit': 3_000_000 } }); // QEMU's limit is 2000 s
    const err = await job.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).reason).toBe('unsupported');
    expect((err as MigrationError).message).toMatch(/downtime.limit/i);
    expect((err as MigrationError).guestOnSource).toBe(true);
    expect(await stateOn(pair.a, g.name)).toBe('running');
  });

  it('a busy migration port fails fast with reason port-busy', async () => {
    const g = await guest({ mib: 1, spin: 1000 });
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const job = migrate(g, pair.b, { migrationUri: `tcp://127.0.0.1:${port}` });
      await expect(job.result).rejects.toMatchObject({ reason: 'port-busy', guestOnSource: true });
    } finally {
      blocker.close();
    }
    expect(await stateOn(pair.a, g.name)).toBe('running');
    expect(await g.qmp.execute('query-status')).toMatchObject({ status: 'running' });
  });

  it('two daemons with the same host UUID: refused as the same host', async () => {
    const g = await guest({ mib: 1, spin: 1000 });
    const twin = await startPrivateLibvirtd({ prefix: 'mgt', hostUuid: pair.hostUuidA });
    try {
      const job = migrate(g, { daemon: twin, conn: pair.b.conn });
      await expect(job.result).rejects.toMatchObject({ reason: 'same-host', guestOnSource: true });
      await expect(job.result).rejects.toThrow(/host_uuid|same host/);
    } finally {
      await twin.stop();
    }
    expect(await stateOn(pair.a, g.name)).toBe('running');
  });

  it('a destination daemon stopped before the call: a clear error, the guest untouched', async () => {
    const g = await guest({ mib: 1, spin: 1000 });
    const gone = await startPrivateLibvirtd({ prefix: 'mgc' });
    await gone.stop();
    const idBefore = await g.domain.id();
    const job = migrate(g, { daemon: gone, conn: pair.b.conn });
    const err = await job.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).reason).toBe('destination-unreachable');
    expect((err as MigrationError).message).toContain(gone.uri);
    expect((err as MigrationError).hint).toMatch(/destination libvirtd/);
    expect((err as MigrationError).guestOnSource).toBe(true);
    expect(await g.domain.id()).toBe(idBefore);
    expect(await stateOn(pair.a, g.name)).toBe('running');
  });

  describe('guest.migrate() on the Hypervisor/Guest facade', () => {
    let hvA: Hypervisor;
    let hvB: Hypervisor;
    beforeAll(async () => {
      // The hypervisors' monitor directories are the daemons' private ones, inside their temp dirs.
      hvA = await Hypervisor.connect(pair.a.daemon.uri, { monitorDir: pair.a.daemon.qmpDir });
      hvB = await Hypervisor.connect(pair.b.daemon.uri, { monitorDir: pair.b.daemon.qmpDir });
    });
    afterAll(async () => {
      await Promise.allSettled([hvA?.close(), hvB?.close()]);
    });

    async function dirtyXml(name: string): Promise<string> {
      facadeGuests.push(name);
      return tinyGuestXml({ name, kernel: await buildDirtyKernel(), cmdline: dirtyCmdline({ mib: 4, spin: 100 }) });
    }

    it('moves a running guest to a Hypervisor: the result has the Guest there, its QMP route works, source clients are told', async () => {
      const guest = await hvA.createGuest(await dirtyXml('fa1'), { qmpSocket: true });
      const sourceQmp = await guest.qmp();
      const events = guest.events({ qmp: false });
      await events.ready;
      const job = guest.migrate(hvB, { qemuParameters: { 'downtime-limit': 400 } });
      const phases = new Set<string>();
      job.onProgress((p) => phases.add(p.phase));
      const r = await job;

      expect(phases.has('setup')).toBe(true); // QEMU's MIGRATION events came through guest.qmp()
      expect(r.guest).toBeDefined();
      const moved = r.guest as Guest;
      expect(moved.uri).toBe(hvB.uri);
      expect(await hvB.guest(moved.name)).toBe(moved); // the destination Hypervisor's own Guest
      expect((await moved.state()).state).toBe('running');
      expect(await moved.monitorSocket()).toBe(r.destinationQmpSocket);
      expect(r.destinationQmpSocket!.startsWith(`${pair.b.daemon.qmpDir}/`)).toBe(true);
      const qmp = await moved.qmp();
      expect(qmp.route).toBe('monitor');
      expect(await qmp.execute('query-status')).toMatchObject({ status: 'running' });
      await qmp.close();

      // the source side: libvirt said the guest stopped (migrated), the source's QMP client was closed
      const seen: GuestEvent[] = [];
      for await (const e of events) {
        seen.push(e);
        if (seen.some((x) => x.kind === 'lifecycle' && x.event === 'stopped') && seen.some((x) => x.kind === 'qmp-disconnected')) break;
      }
      expect(seen).toContainEqual(expect.objectContaining({ source: 'libvirt', kind: 'lifecycle', event: 'stopped', detail: 'migrated' }));
      expect(seen).toContainEqual(expect.objectContaining({ source: 'libqemu', kind: 'qmp-disconnected' }));
      await expect(sourceQmp.execute('query-status')).rejects.toThrow();
      await sourceQmp.close();

      // and back: the source's Guest object follows it again
      const back = await moved.migrate(hvA);
      expect(back.guest).toBe(guest);
      const again = await guest.qmp();
      expect(await again.execute('query-status')).toMatchObject({ status: 'running' });
      await again.close();
      await guest.destroy();
    });

    it('a defined guest becomes defined on the destination (persistent XML with the moved monitor) and undefined on the source', async () => {
      const guest = await hvA.defineGuest(await dirtyXml('fa2'), { qmpSocket: true });
      await guest.start();
      const r = await guest.migrate(pair.b.daemon.uri);
      if (r.destinationQmpSocket) madeDirs.push(dirname(r.destinationQmpSocket));
      expect(r.persistent).toBe(true);
      expect(r.guest).toBeUndefined(); // a URI destination: no Hypervisor to hand the guest to
      const there = await hvB.connection.lookupDomain('fa2');
      expect(await there.isPersistent()).toBe(true);
      // the definition (not only the live XML) has the destination's path (--persistent-xml)
      const inactive = await there.xml({ inactive: true });
      expect(inactive).toContain(r.destinationQmpSocket!);
      expect(inactive).not.toContain(pair.a.daemon.qmpDir);
      await expect(hvA.guest('fa2')).rejects.toThrow(/fa2/);
      await there.destroy();
      await there.undefine();
      // a URI destination: the monitor went to libqemu's default directory for that URI, made for this test
      expect(dirname(r.destinationQmpSocket!)).toMatch(/libqemu-qmp-\d+-[0-9a-f]{8}$/); // removed in afterEach
    });

    it('rejects a destination that is the source itself', async () => {
      const guest = await hvA.createGuest(await dirtyXml('fa3'), { qmpSocket: true });
      expect(() => guest.migrate(hvA)).toThrow(/already on/);
      await guest.destroy();
    });
  });

  describe('libqemu migrate (the command line)', () => {
    it('--json: progress lines, then the result; the guest runs on the destination', async () => {
      const g = await guest({ mib: 4, spin: 100 });
      await g.qmp.close(); // the CLI opens its own route
      const sock = `${pair.b.daemon.qmpDir}/${g.name}.sock`;
      const r = await runCli(['-c', pair.a.daemon.uri, '--json', 'migrate', g.name, '--to', pair.b.daemon.uri, '--qmp-socket', sock, '--downtime', '500'], { timeoutMs: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { progress?: MigrationProgress; result?: { destinationQmpSocket: string; stats: { passes: number } } });
      const progress = lines.flatMap((l) => (l.progress ? [l.progress] : []));
      expect(progress[0]?.phase).toBe('preparing');
      expect(progress.at(-1)?.phase).toBe('completed');
      expect(lines.at(-1)?.result).toMatchObject({ destinationQmpSocket: sock });
      expect(lines.at(-1)!.result!.stats.passes).toBeGreaterThanOrEqual(1);
      expect(await stateOn(pair.b, g.name)).toBe('running');
    });

    it('Ctrl-C aborts the migration cleanly: exit 130, the guest keeps running on the source', async () => {
      const g = await guest(NON_CONVERGING);
      await g.qmp.close();
      const cli = new CliProcess(['-c', pair.a.daemon.uri, '--json', 'migrate', g.name, '--to', pair.b.daemon.uri, '--bandwidth', '2', '--qmp-socket', `${pair.b.daemon.qmpDir}/${g.name}.sock`]);
      await cli.waitFor(/"phase":"active"/, 'stdout', 60_000);
      const code = await cli.stop('SIGINT');
      expect(code, cli.stderr).toBe(130);
      expect(cli.stderr).toMatch(/aborted/);
      expect(await stateOn(pair.a, g.name)).toBe('running');
      expect(await stateOn(pair.b, g.name)).toBeUndefined();
    });

    it('refuses bad options before touching anything (exit 1)', async () => {
      const r = await runCli(['-c', pair.a.daemon.uri, '-d', 'whatever', 'migrate', '--to', pair.b.daemon.uri, '--bandwidth', 'lots']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/--bandwidth must be a positive number/);
    });
  });
});
