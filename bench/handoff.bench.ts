/**
 * The per-call hand-off between Node's main thread and a libvirt executor worker, side by side:
 *  - shipped: src/libvirt/executor.ts (request and reply as MessagePort messages; the worker sleeps in
 *    Atomics.wait and is woken by a futex, the main thread by libuv);
 *  - ring: bench/handoff/ (request and reply in shared-memory rings, the main thread woken by
 *    Atomics.waitAsync), the alternative measured for the "faster hand-off" work and not shipped.
 * Rounds alternate between the two (order swapped every round) and the ratio printed is the median of the
 * per-round median ratios, so that drift on a shared machine hits both alike. Operations: the hand-off
 * alone (noop), virDomainGetXMLDesc on the in-process test:///default driver (a ~1 KB string reply),
 * and, through a private libvirtd, virDomainGetXMLDesc and query-status passthrough; then the main
 * thread's event-loop delay with 1,000 calls in flight on each.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Connection } from '../src/libvirt/index.js';
import { Executor } from '../src/libvirt/executor.js';
import { runtime } from '../src/libvirt/runtime.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/private-libvirtd.js';
import { RingExecutor } from './handoff/ring-executor.js';
import { printTable } from './table.js';

const ROUNDS = Number(process.env.HANDOFF_BENCH_ROUNDS ?? 30);
const PER_ROUND = Number(process.env.HANDOFF_BENCH_CALLS ?? 100);

interface Side {
  name: string;
  call(op: string, args: unknown[]): Promise<unknown>;
  terminate(): Promise<void>;
  dom: bigint;
}

async function side(name: string, uri: string, domain: string): Promise<Side> {
  const ex = name === 'shipped' ? await Executor.create() : await RingExecutor.create();
  const call = (op: string, args: unknown[]): Promise<unknown> => (ex.call as (op: string, args: unknown[]) => Promise<unknown>)(op, args);
  const opened = (await call('open', [uri, false])) as { conn: bigint };
  const ref = (await call('invoke', ['virDomainLookupByName', [opened.conn, domain]])) as { ptr: bigint };
  return { name, call, terminate: () => ex.terminate(), dom: ref.ptr };
}

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function perRound(f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < PER_ROUND; i++) {
    const t0 = process.hrtime.bigint();
    await f();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return med(times);
}

type Op = [label: string, f: (s: Side) => Promise<unknown>];

async function compare(title: string, sides: [Side, Side], ops: Op[]): Promise<void> {
  const rounds: Record<string, Record<string, number[]>> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [label, f] of ops) {
      for (const s of r % 2 ? [sides[1], sides[0]] : sides) ((rounds[label] ??= {})[s.name] ??= []).push(await perRound(() => f(s)));
    }
  }
  const rows = ops.flatMap(([label]) => {
    const a = rounds[label]![sides[0].name]!;
    const b = rounds[label]![sides[1].name]!;
    const ratio = med(b.map((x, i) => x / a[i]!));
    return [
      { name: `${label}: ${sides[0].name}`, value: med(a), unit: 'ms/call (median of round medians)' },
      { name: `${label}: ${sides[1].name}`, value: med(b), unit: 'ms/call (median of round medians)', extra: { [`${sides[1].name}/${sides[0].name} per round`]: ratio.toFixed(3), [`rounds ${sides[1].name} faster`]: `${b.filter((x, i) => x < a[i]!).length}/${b.length}` } },
    ];
  });
  printTable(title, rows, `${ops[0]![0]}: ${sides[0].name}`);
}

async function delay(sides: Side[], op: (s: Side) => Promise<unknown>): Promise<void> {
  const rows = [];
  for (let rep = 0; rep < 4; rep++) {
    for (const s of rep % 2 ? [...sides].reverse() : sides) {
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 1000 }, () => op(s)));
      h.disable();
      rows.push({ name: `${s.name} #${rep >> 1}`, value: h.percentile(99) / 1e6, unit: 'ms p99', extra: { max: (h.max / 1e6).toFixed(2), wall: `${(performance.now() - t0).toFixed(0)} ms` } });
    }
  }
  printTable('main-thread event-loop delay, 1,000 concurrent query-status (resolution 1 ms)', rows, rows[0]!.name, '< 10 ms p99');
}

export default async function (): Promise<void> {
  // Idle executors do not hold the process (by design), and neither does awaiting their terminate():
  // this timer keeps the benchmark alive between its steps.
  const hold = setInterval(() => undefined, 1 << 30);
  try {
    await run();
  } finally {
    clearInterval(hold);
  }
}

async function run(): Promise<void> {
  await runtime.start();
  const local = [await side('shipped', 'test:///default', 'test'), await side('ring', 'test:///default', 'test')] as [Side, Side];
  try {
    await compare('hand-off, test:///default (in-process driver), sequential', local, [
      ['noop (hand-off alone)', (s) => s.call('noop', [])],
      ['getXMLDesc', (s) => s.call('invoke', ['virDomainGetXMLDesc', [s.dom, 0]])],
    ]);
  } finally {
    for (const s of local) await s.terminate();
  }
  const daemon = await startPrivateLibvirtd({ prefix: 'lvho' });
  const remote: Side[] = [];
  try {
    const conn = await Connection.open(daemon.uri);
    await conn.createXML(tinyGuestXml({ name: 'handoff1' }));
    await conn.close();
    remote.push(await side('shipped', daemon.uri, 'handoff1'), await side('ring', daemon.uri, 'handoff1'));
    const query = (s: Side): Promise<unknown> => s.call('invoke', ['virDomainQemuMonitorCommand', [s.dom, '{"execute":"query-status"}', 0]]);
    await compare('hand-off, through the private libvirtd, sequential', remote as [Side, Side], [
      ['noop (hand-off alone)', (s) => s.call('noop', [])],
      ['getXMLDesc', (s) => s.call('invoke', ['virDomainGetXMLDesc', [s.dom, 0]])],
      ['query-status passthrough', query],
    ]);
    await delay(remote, query);
  } finally {
    for (const s of remote) await s.terminate();
    await daemon.stop();
  }
}
