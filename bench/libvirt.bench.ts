/**
 * libvirt binding benchmarks (issue 3), against one private libvirtd and one tiny TCG guest:
 *  1. qemuMonitorCommand(query-status) per call: libqemu vs Debian's python3-libvirt (same run, same guest);
 *     target ratio ≤ 1.10.
 *  2. main-thread event-loop delay p99 while 1,000 passthrough calls run concurrently; target < 10 ms.
 *  3. RSS growth over 100,000 dom.xml() calls; target < 10 MB.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Connection, type Domain } from '../src/libvirt/index.js';
import { spawnWorker } from '../src/libvirt/spawn-worker.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/private-libvirtd.js';
import { startPythonBaseline, type PythonBaseline } from './python-baseline.js';
import { QUERY_STATUS as query, startPythonQmp } from './python-qmp.js';
import { eventLoopDelayUnderCalls } from './event-loop.js';
import { printTable, summarize, timeEach, perCallRow } from './table.js';

const CALLS = Number(process.env.LIBVIRT_BENCH_CALLS ?? 2000);
const XML_CALLS = Number(process.env.LIBVIRT_BENCH_XML_CALLS ?? 100_000);
/**
 * Which parts run (default all): import, xml, passthrough, delay, rss — e.g. LIBVIRT_BENCH_PARTS=xml,passthrough.
 * LIBVIRT_BENCH_ONLY=rss still means the RSS rows alone.
 */
const PARTS = new Set((process.env.LIBVIRT_BENCH_PARTS ?? (process.env.LIBVIRT_BENCH_ONLY === 'rss' ? 'rss' : 'import,xml,passthrough,delay,rss')).split(','));


function pythonHasLibvirt(): boolean {
  return existsSync('/usr/bin/python3') && existsSync('/usr/lib/python3/dist-packages/libvirt_qemu.py');
}

/** A python3-libvirt baseline process running `script`. */
function startPython(uri: string, name: string, loop: boolean, script: string): Promise<PythonBaseline> {
  return startPythonBaseline(script, uri, name, loop);
}


/** bench/raw-libvirt-worker.ts: the same native call in a worker, `n` per hop (no per-call hand-off). */
async function startRawWorker(uri: string, name: string): Promise<{ round(n: number, op?: 'qmp' | 'xml'): Promise<number[]>; stop(): Promise<void> }> {
  const worker = spawnWorker(new URL('./raw-libvirt-worker.ts', import.meta.url), { workerData: { uri, name } });
  let waiting: { resolve: (t: number[]) => void; reject: (e: unknown) => void } | undefined;
  worker.on('message', (t: number[]) => waiting?.resolve(t));
  worker.on('error', (e) => waiting?.reject(e));
  const next = (): Promise<number[]> => new Promise((resolve, reject) => (waiting = { resolve, reject }));
  await next();
  return {
    async round(n, op = 'qmp') {
      const p = next();
      worker.postMessage({ op, n });
      return p;
    },
    async stop() {
      const p = next();
      worker.postMessage({ op: 'qmp', n: 0 });
      await p;
      await worker.terminate();
    },
  };
}

async function passthroughLatency(conn: Connection, dom: Domain, uri: string): Promise<void> {
  const rows = [];
  // Interleave rounds so that machine noise hits both sides alike.
  const ours: number[] = [];
  const theirs: number[] = [];
  const theirsLoop: number[] = [];
  const handOff: number[] = [];
  const raw: number[] = [];
  const rounds = 20;
  const pythonQmp = await startPythonQmp(uri, dom.name);
  const python = pythonQmp ? [pythonQmp.plain, pythonQmp.loop] : [];
  const rawWorker = await startRawWorker(uri, dom.name);
  try {
    // Every side is warmed up once (python3-libvirt by its script: 100 calls), then timed without further
    // warm-up calls, in an order that rotates every round.
    await rawWorker.round(100, 'qmp');
    for (let i = 0; i < 100; i++) await dom.qemuMonitorCommand(query);
    const n = CALLS / rounds;
    const sides: (() => Promise<void>)[] = [
      async () => void ours.push(...(await timeEach(n, () => dom.qemuMonitorCommand(query), 0))),
      async () => void handOff.push(...(await timeEach(n, () => conn.exec('noop', []), 5))),
      async () => void raw.push(...(await rawWorker.round(n, 'qmp'))),
    ];
    if (python.length === 2) {
      sides.push(async () => void theirs.push(...(await python[0]!.round(n))));
      sides.push(async () => void theirsLoop.push(...(await python[1]!.round(n))));
    }
    for (let r = 0; r < rounds; r++) for (let k = 0; k < sides.length; k++) await sides[(k + r) % sides.length]!();
  } finally {
    for (const p of python) p.stop();
    await rawWorker.stop();
  }
  const o = summarize(ours);
  rows.push({
    name: 'libqemu dom.qemuMonitorCommand',
    value: o.mean,
    unit: 'ms/call',
    extra: { p50: o.p50.toFixed(3), p99: o.p99.toFixed(3), n: ours.length },
  });
  // Diagnostics: the same native call in a worker with no per-call hand-off (koffi + libvirt alone), and the
  // main ↔ executor hand-off alone on an otherwise idle machine (no libvirt call).
  const w = summarize(raw);
  rows.push(perCallRow('koffi call in a worker, no hand-off', w, raw.length));
  const h = summarize(handOff);
  rows.push(perCallRow('libqemu hand-off only (exec noop)', h, handOff.length));
  if (theirs.length > 0) {
    const p = summarize(theirs);
    rows.push(perCallRow('python3-libvirt qemuMonitorCommand', p, theirs.length));
    const pl = summarize(theirsLoop);
    rows.push(perCallRow('python3-libvirt, event loop thread running', pl, theirsLoop.length));
    const ratio = o.mean / p.mean;
    printTable('query-status through libvirt passthrough, sequential', rows, 'python3-libvirt qemuMonitorCommand', '≤ 1.10 vs python3-libvirt');
    console.log(
      `ratio libqemu/python (mean): ${ratio.toFixed(3)} ${ratio <= 1.1 ? 'OK' : 'MISSED'}; (p50): ${(o.p50 / p.p50).toFixed(3)}; ` +
        `vs python with an event loop (mean): ${(o.mean / pl.mean).toFixed(3)}`,
    );
    console.log(
      `of the gap: koffi + libvirt in a worker ${(w.mean / p.mean).toFixed(3)}× python; the per-call hand-off (two thread wake-ups) ` +
        `${(o.mean - w.mean).toFixed(3)} ms/call under this load vs ${h.p50.toFixed(3)} ms p50 when idle`,
    );
  } else {
    printTable('query-status through libvirt passthrough, sequential', rows, 'libqemu dom.qemuMonitorCommand');
    console.log('python3-libvirt not installed (/usr/bin/python3 + python3-libvirt): no baseline');
  }
}


// python3-libvirt's dom.XMLDesc(), driven round by round like the query-status baseline (bench/python-qmp.ts) (with 'loop': libvirt's event
// loop in a thread, as libqemu always has).
const PYTHON_XML = `
import json, sys, time, threading, libvirt
if sys.argv[3] == 'loop':
    libvirt.virEventRegisterDefaultImpl()
    def run():
        while True: libvirt.virEventRunDefaultImpl()
    threading.Thread(target=run, daemon=True).start()
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName(sys.argv[2])
for _ in range(50): dom.XMLDesc(0)
print('[]', flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        t0 = time.perf_counter_ns()
        dom.XMLDesc(0)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    print(json.dumps(times), flush=True)
`;

/**
 * The generated binding against the hand-written method it replaced, and against python3-libvirt; with
 * the floor beside them: the same call in a worker with no per-call hand-off, python with libvirt's event
 * loop running in a thread (a connection then costs its loop thread two wake-ups per call), and the
 * hand-off alone (exec noop).
 */
async function generatedCall(conn: Connection, dom: Domain, uri: string): Promise<void> {
  const generated: number[] = [];
  const hand: number[] = [];
  const theirs: number[] = [];
  const theirsLoop: number[] = [];
  const raw: number[] = [];
  const handOff: number[] = [];
  const rounds = 20;
  const python = pythonHasLibvirt() ? await Promise.all([startPython(uri, dom.name, false, PYTHON_XML), startPython(uri, dom.name, true, PYTHON_XML)]) : [];
  const rawWorker = await startRawWorker(uri, dom.name);
  try {
    await rawWorker.round(50, 'xml');
    for (let r = 0; r < rounds; r++) {
      generated.push(...(await timeEach(CALLS / rounds, () => dom.getXMLDesc(), r === 0 ? 50 : 5)));
      hand.push(...(await timeEach(CALLS / rounds, () => dom.xml(), r === 0 ? 50 : 5)));
      raw.push(...(await rawWorker.round(CALLS / rounds, 'xml')));
      handOff.push(...(await timeEach(CALLS / rounds, () => conn.exec('noop', []), 5)));
      if (python.length === 2) {
        theirs.push(...(await python[0]!.round(CALLS / rounds)));
        theirsLoop.push(...(await python[1]!.round(CALLS / rounds)));
      }
    }
  } finally {
    for (const p of python) p.stop();
    await rawWorker.stop();
  }
  const g = summarize(generated);
  const h = summarize(hand);
  const w = summarize(raw);
  const rows = [
    perCallRow('libqemu dom.getXMLDesc() (generated)', g, generated.length),
    perCallRow('libqemu dom.xml() (hand-written)', h, hand.length),
    perCallRow('koffi getXMLDesc in a worker, no hand-off', w, raw.length),
    perCallRow('libqemu hand-off only (exec noop)', summarize(handOff), handOff.length),
  ];
  let line = `generated/hand-written (mean): ${(g.mean / h.mean).toFixed(3)} ${g.mean / h.mean <= 1.05 ? 'OK' : 'MISSED'} (p50 ${(g.p50 / h.p50).toFixed(3)})`;
  if (theirs.length) {
    const p = summarize(theirs);
    const pl = summarize(theirsLoop);
    rows.push(perCallRow('python3-libvirt dom.XMLDesc()', p, theirs.length));
    rows.push(perCallRow('python3-libvirt, event loop thread running', pl, theirsLoop.length));
    line +=
      `; generated/python3-libvirt (mean): ${(g.mean / p.mean).toFixed(3)} ${g.mean / p.mean <= 1.1 ? 'OK' : 'MISSED'} (p50 ${(g.p50 / p.p50).toFixed(3)})` +
      `; vs python with an event loop (mean): ${(g.mean / pl.mean).toFixed(3)}; floor: koffi in a worker, no hand-off, ${(w.mean / p.mean).toFixed(3)}× python`;
  }
  printTable('virDomainGetXMLDesc through the private libvirtd, sequential', rows, 'libqemu dom.xml() (hand-written)', '≤ 1.05 vs xml(), ≤ 1.10 vs python3-libvirt');
  console.log(line);
}

/** Median import time (ms) of `<tree>/src/index.ts` in fresh processes. */
function importMs(tree: string, runs: number): number[] {
  const entry = pathToFileURL(join(tree, 'src/index.ts')).href;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(entry)}); console.log(performance.now() - t)`], {
      encoding: 'utf8',
      cwd: tree,
    });
    times.push(Number(r.stdout.trim()));
  }
  return times.sort((a, b) => a - b);
}

/**
 * Import time of the package entry point; with LIBVIRT_BENCH_BASELINE=<checkout of the tree before the
 * generated layer, with node_modules> both are measured, alternately, and the ratio printed (target ≤ 1.2).
 */
function importTime(): void {
  const here = fileURLToPath(new URL('..', import.meta.url));
  const baseline = process.env.LIBVIRT_BENCH_BASELINE;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < 9; i++) {
    ours.push(...importMs(here, 1));
    if (baseline) theirs.push(...importMs(baseline, 1));
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const min = (xs: number[]): number => Math.min(...xs);
  const rows = [{ name: 'this tree', value: med(ours), unit: 'ms median', extra: { min: min(ours).toFixed(1) } }];
  if (theirs.length) rows.push({ name: 'baseline tree', value: med(theirs), unit: 'ms median', extra: { min: min(theirs).toFixed(1) } });
  printTable('import time of src/index.ts (fresh process, through tsx)', rows, theirs.length ? 'baseline tree' : 'this tree', theirs.length ? '≤ 1.2× baseline' : undefined);
  if (theirs.length) console.log(`import ratio (median): ${(med(ours) / med(theirs)).toFixed(3)}, (min): ${(min(ours) / min(theirs)).toFixed(3)}`);
  else console.log('set LIBVIRT_BENCH_BASELINE to a checkout of the tree before the generated layer to print the ratio');
}

async function rssGrowth(dom: Domain, label: string, call: (dom: Domain) => Promise<unknown> = (d) => d.xml().then((x) => {
  if (!x.includes('<domain')) throw new Error('xml() returned no domain XML');
}), what = 'dom.xml() calls'): Promise<void> {
  // A real gc() before each reading, so that garbage is not counted as growth (works without --expose-gc).
  setFlagsFromString('--expose-gc');
  const gc = (globalThis as { gc?: () => void }).gc ?? (runInNewContext('gc') as (() => void) | undefined);
  const settle = async (): Promise<{ rss: number; newSpace: number }> => {
    gc?.();
    await new Promise((r) => setImmediate(r));
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
    const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
    return { rss: process.memoryUsage().rss, newSpace };
  };
  const batch = 64; // calls in flight per round (the worker runs them one by one)
  const run = async (n: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < n; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => call(dom)));
    }
    return (performance.now() - t0) / 1000;
  };
  await run(10_000); // pools, JIT and allocator arenas reach steady state first: growth after that is what would leak
  const before = await settle();
  const secs = await run(XML_CALLS);
  const after = await settle();
  const secs2 = await run(XML_CALLS);
  const after2 = await settle();
  const mb = (b: number): number => b / 1e6;
  const growth = mb(after.rss - before.rss);
  const growth2 = mb(after2.rss - after.rss);
  const young = mb(after.newSpace - before.newSpace);
  printTable(
    `RSS over ${XML_CALLS.toLocaleString('en')} ${what} (${label}; gc before each reading)`,
    [
      { name: 'RSS before', value: mb(before.rss), unit: 'MB' },
      { name: `after ${XML_CALLS.toLocaleString('en')} calls`, value: mb(after.rss), unit: 'MB', extra: { growth: `${growth.toFixed(2)} MB`, 'V8 new-space resize': `${young.toFixed(1)} MB`, time: `${secs.toFixed(1)} s`, 'µs/call': ((secs * 1e6) / XML_CALLS).toFixed(1) } },
      { name: `after ${XML_CALLS.toLocaleString('en')} more`, value: mb(after2.rss), unit: 'MB', extra: { growth: `${growth2.toFixed(2)} MB`, 'V8 new-space resize': `${mb(after2.newSpace - after.newSpace).toFixed(1)} MB`, time: `${secs2.toFixed(1)} s`, 'µs/call': ((secs2 * 1e6) / XML_CALLS).toFixed(1) } },
    ],
    'RSS before',
    '< 10 MB growth',
  );
  console.log(
    `RSS growth over ${XML_CALLS} calls: ${growth.toFixed(2)} MB ${growth < 10 ? 'OK' : 'MISSED'}` +
      (young > 0 ? ` (${young.toFixed(1)} MB of it is V8 growing the main thread's young generation, not memory held by calls)` : '') +
      `; over the next ${XML_CALLS}: ${growth2.toFixed(2)} MB`,
  );
}

export default async function (): Promise<void> {
  const daemon = await startPrivateLibvirtd({ prefix: 'lvbn' });
  let conn: Connection | undefined;
  try {
    conn = await Connection.open(daemon.uri);
    const dom = await conn.createXML(tinyGuestXml({ name: 'bench1' }));
    if (PARTS.has('import')) importTime();
    if (PARTS.has('xml')) await generatedCall(conn, dom, daemon.uri);
    if (PARTS.has('passthrough')) await passthroughLatency(conn, dom, daemon.uri);
    if (PARTS.has('delay')) await eventLoopDelayUnderCalls(dom, 'main-thread event-loop delay, 1,000 concurrent calls on a Connection', 'p99 under load');
    if (!PARTS.has('rss')) {
      // skipped
    } else if (process.env.LIBVIRT_BENCH_XML_DRIVER === 'remote') {
      await rssGrowth(dom, 'remote driver, through the private libvirtd');
    } else {
      // 100k RPCs through the daemon take minutes here; test:///default runs in-process and exercises
      // the same worker hop, koffi string copy and free() paths.
      const sample = 5000;
      const t0 = performance.now();
      for (let i = 0; i < sample; i += 64) await Promise.all(Array.from({ length: Math.min(64, sample - i) }, () => dom.xml()));
      const perCall = (performance.now() - t0) / sample;
      console.log(
        `\nxml() through the private libvirtd: ${(perCall * 1000).toFixed(0)} µs/call over ${sample} calls, so ${XML_CALLS.toLocaleString('en')} calls would take ~${((perCall * XML_CALLS) / 1000).toFixed(0)} s here: the RSS test below uses test:///default instead`,
      );
      const test = await Connection.open('test:///default');
      await rssGrowth(await test.lookupDomain('test'), 'in-process test:///default driver, same free paths; LIBVIRT_BENCH_XML_DRIVER=remote for the daemon');
      // generated calls returning arrays of objects (each released through the FinalizationRegistry) and strings
      let n = 0;
      await rssGrowth(
        await test.lookupDomain('test'),
        'test:///default, generated calls',
        (d) => (n++ % 2 === 0 ? test.listAllDomains() : d.getXMLDesc()),
        'generated calls (listAllDomains() / getXMLDesc() alternately)',
      );
      await test.close();
    }
    await dom.destroy();
  } finally {
    await conn?.close();
    await daemon.stop();
  }
}
