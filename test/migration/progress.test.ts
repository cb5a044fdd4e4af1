import { describe, expect, it } from 'vitest';
import { ProgressTracker, type MigrationProgress } from '../../src/migration/progress.js';

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function collect(it: AsyncIterable<MigrationProgress>): Promise<MigrationProgress[]> {
  const out: MigrationProgress[] = [];
  for await (const p of it) out.push(p);
  return out;
}

describe('ProgressTracker', () => {
  it('merges QMP events, libvirt events, job stats and job-completed into one monotonic stream', async () => {
    const c = clock();
    const t = new ProgressTracker(c.now);
    const seen = collect(t.subscribe({ bufferSize: 100 }));
    c.advance(800);
    t.migrationStatus('setup');
    t.passStarted(1, 'pass');
    t.passStarted(1, 'iteration'); // the same pass seen through libvirt: no new snapshot
    t.migrationStatus('active');
    c.advance(100);
    t.jobStats({ type: 2, memory_total: 67641344n, memory_processed: 20_000_000n, memory_remaining: 40_000_000n, memory_bps: 4_000_000n, memory_iteration: 1, downtime: 1600 });
    t.queryMigrate({ status: 'active', 'expected-downtime': 1500, ram: { transferred: 19_000_000, remaining: 41_000_000, total: 67641344, mbps: 80, 'dirty-sync-count': 2, 'dirty-pages-rate': 2486 } });
    t.passStarted(3, 'pass');
    t.migrationStatus('pre-switchover');
    t.switchover();
    t.migrationStatus('active'); // a late status never moves the phase back
    t.jobCompleted({ memory_total: 67641344, memory_processed: 34_000_000, memory_bps: 144_000_000, memory_iteration: 3, downtime: 55 });
    t.end('completed');
    const list = await seen;

    expect(list[0]).toMatchObject({ phase: 'preparing', pass: 0, cause: 'start', elapsedMs: 0 });
    expect(list.map((p) => p.phase)).toEqual(['preparing', 'setup', 'active', 'active', 'active', 'active', 'pre-switchover', 'device', 'completed']);
    expect(list.map((p) => p.cause)).toEqual(['start', 'migration-event', 'pass', 'job-stats', 'query-migrate', 'pass', 'migration-event', 'migration-event', 'job-completed']);
    const stats = list[3]!;
    expect(stats).toMatchObject({ transferredBytes: 20_000_000, remainingBytes: 40_000_000, totalBytes: 67641344, bytesPerSecond: 4_000_000, expectedDowntimeMs: 1600, elapsedMs: 900 });
    const qm = list[4]!;
    // transferred never goes back (libvirt said 20 MB, QEMU 19 MB a moment later); gauges follow the latest
    expect(qm).toMatchObject({ transferredBytes: 20_000_000, remainingBytes: 41_000_000, pass: 2, bytesPerSecond: 10_000_000, dirtyPagesPerSecond: 2486, expectedDowntimeMs: 1500 });
    expect(list.at(-1)).toMatchObject({ phase: 'completed', pass: 3, expectedDowntimeMs: 55, remainingBytes: 0, transferredBytes: 34_000_000 });
  });

  it('ignores job stats while libvirt is still preparing (all zeros)', () => {
    const t = new ProgressTracker();
    const got: MigrationProgress[] = [];
    t.onProgress((p) => got.push(p));
    t.jobStats({ type: 2, memory_total: 0, memory_processed: 0 });
    expect(got).toEqual([]);
    expect(t.current.phase).toBe('preparing');
  });

  it('moves into cancelling and cancelled from any phase, and nothing moves after the end', async () => {
    const t = new ProgressTracker();
    t.migrationStatus('active');
    t.migrationStatus('cancelling');
    t.migrationStatus('active');
    expect(t.current.phase).toBe('cancelling');
    t.end('cancelled');
    t.passStarted(9, 'pass');
    expect(t.current).toMatchObject({ phase: 'cancelled', pass: 0, cause: 'end' });
    // a late subscriber gets the final snapshot and an ended iteration
    expect((await collect(t.subscribe())).map((p) => p.phase)).toEqual(['cancelled']);
  });

  it("ends in the call's outcome even when QEMU reported 'failed' first (our cancel raced the destination going away)", () => {
    const t = new ProgressTracker();
    t.migrationStatus('active');
    t.migrationStatus('cancelling');
    t.migrationStatus('failed');
    expect(t.current.phase).toBe('failed');
    t.end('cancelled');
    expect(t.current).toMatchObject({ phase: 'cancelled', cause: 'end' });
    t.migrationStatus('failed');
    expect(t.current.phase).toBe('cancelled');
  });

  it('a slow reader loses old snapshots, not the newest, and never blocks the producer', async () => {
    const t = new ProgressTracker();
    const sub = t.subscribe({ bufferSize: 2 });
    for (let i = 1; i <= 10; i++) t.passStarted(i, 'pass');
    t.end('failed');
    const list = await collect(sub);
    expect(list.map((p) => p.phase === 'failed' ? 'end' : p.pass)).toEqual([10, 'end']);
  });

  it('maps QEMU statuses it does not model to active, and unknown ones to nothing', () => {
    const t = new ProgressTracker();
    t.migrationStatus('wait-unplug');
    expect(t.current.phase).toBe('active');
    t.migrationStatus('some-future-status');
    expect(t.current.phase).toBe('active');
  });

  it('stops delivering to a subscriber that broke out of its loop', async () => {
    const t = new ProgressTracker();
    let n = 0;
    for await (const p of t.subscribe()) {
      n++;
      if (p.cause === 'start') break;
    }
    expect(t.hasSubscribers).toBe(false);
    t.passStarted(1, 'pass');
    expect(n).toBe(1);
  });
});
