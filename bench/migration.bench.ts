/**
 * Live migration of the 64 MiB tiny guest between two private libvirtds, there and back:
 * - guest.migrate() vs `virsh migrate` with the same options (p2p, live, tcp://127.0.0.1, listen
 *   address 127.0.0.1, destination XML with the second monitor moved), target ≤ 1.05×;
 * - the cost of reading progress (libvirt job stats every 500 ms + events) on the total time, target < 5 %.
 * Variants are interleaved round by round so that load changes on this shared machine hit them all alike.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Hypervisor } from '../src/hybrid/hypervisor.js';
import { planDestinationXml } from '../src/migration/destination.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../src/testing/index.js';
import { printTable, summarize } from './table.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.MIGRATION_BENCH_ROUNDS ?? 8);
const NAME = 'mbench';

type Variant = 'virsh migrate' | 'libqemu' | 'libqemu + progress';

interface Side {
  daemon: PrivateLibvirtd;
  hv: Hypervisor;
}

export default async function migrationBench(): Promise<void> {
  const [da, db] = await Promise.all([startPrivateLibvirtd({ prefix: 'mba' }), startPrivateLibvirtd({ prefix: 'mbb' })]);
  const scratch = await mkdtemp(join(tmpdir(), 'libqemu-mbench-'));
  const hvs: Hypervisor[] = [];
  try {
    const quiet = { onTaint: () => undefined };
    const a: Side = { daemon: da, hv: await Hypervisor.connect(da.uri, { monitorDir: da.qmpDir, ...quiet }) };
    const b: Side = { daemon: db, hv: await Hypervisor.connect(db.uri, { monitorDir: db.qmpDir, ...quiet }) };
    hvs.push(a.hv, b.hv);
    await a.hv.createGuest(tinyGuestXml({ name: NAME }), { qmpSocket: `${da.qmpDir}/${NAME}.sock` });

    const times: Record<Variant, number[]> = { 'virsh migrate': [], libqemu: [], 'libqemu + progress': [] };
    const snapshots: number[] = [];
    const variants = Object.keys(times) as Variant[];
    // Warm-up: the first migration into each daemon pays for its QEMU capabilities check.
    await migrateOnce('libqemu', a, b, scratch, snapshots);
    await migrateOnce('libqemu', b, a, scratch, snapshots);
    snapshots.length = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        times[v].push(await migrateOnce(v, a, b, scratch, snapshots));
        times[v].push(await migrateOnce(v, b, a, scratch, snapshots));
      }
    }

    const rows = variants.map((v) => {
      const s = summarize(times[v]);
      // The median: one migration that catches a burst of load elsewhere on this shared machine moves the mean a lot.
      return { name: v, value: s.p50, unit: 'ms (median)', extra: { mean: `${s.mean.toFixed(0)} ms`, min: `${s.min.toFixed(0)} ms`, n: times[v].length } };
    });
    printTable('Live migration of a 64 MiB guest, one way, whole call (p2p, tcp://127.0.0.1, moved monitor)', rows, 'virsh migrate', 'libqemu ≤ 1.05× virsh');
    printTable('Progress reporting overhead on the whole migration', rows.filter((r) => r.name !== 'virsh migrate'), 'libqemu', 'libqemu + progress < 1.05×');
    console.log(`progress snapshots per migration (with a reader): ${(snapshots.reduce((x, y) => x + y, 0) / Math.max(1, snapshots.length)).toFixed(1)}`);
  } finally {
    await Promise.allSettled(hvs.map((h) => h.close()));
    await Promise.allSettled([da.stop(), db.stop()]);
    await rm(scratch, { recursive: true, force: true });
  }
}

async function migrateOnce(variant: Variant, from: Side, to: Side, scratch: string, snapshots: number[]): Promise<number> {
  const guest = await from.hv.guest(NAME);
  if (variant === 'virsh migrate') {
    // virsh gets the same destination XML libqemu builds (prepared outside the timing, as a script would).
    const plan = await planDestinationXml(await guest.xml({ migratable: true }), { uri: to.daemon.uri, monitorDir: to.daemon.qmpDir }, undefined);
    const file = join(scratch, 'dest.xml');
    await writeFile(file, plan.xml!);
    const t0 = performance.now();
    await run('virsh', ['-c', from.daemon.uri, 'migrate', '--live', '--p2p', '--xml', file, NAME, to.daemon.uri, '--migrateuri', 'tcp://127.0.0.1', '--listen-address', '127.0.0.1']);
    return performance.now() - t0;
  }
  const t0 = performance.now();
  const job = guest.migrate(to.hv);
  if (variant === 'libqemu + progress') {
    let n = 0;
    for await (const p of job.progress()) if (p.phase !== 'preparing' || n === 0) n++;
    snapshots.push(n);
  }
  await job;
  return performance.now() - t0;
}
