/**
 * The hybrid facade, side by side against one guest of a private libvirtd:
 * - `query-status` round trip: the QMP-core client on the guest's second monitor socket (baseline),
 *   `guest.qmp({ via: 'monitor' })` (target ≤ 1.10× the baseline), `guest.qmp({ via: 'passthrough' })`,
 *   and `virsh qemu-monitor-command` (a whole process per call);
 * - open time: `hv.guest(name)` + `guest.qmp()` vs `QmpClient.connect({ path })` on the same socket.
 * A second monitor serves one client at a time, so the rows run one after the other.
 * Passthrough per sequential call (issue 15, target ≤ 1.10): guest.qmp({ via: 'passthrough' }) and the
 * libvirt layer alone (domain.qemuMonitorCommand) against python3-libvirt's qemuMonitorCommand, plain and
 * with libvirt's event loop running in a thread, interleaved round by round.
 * Concurrency (issue 15), as separate tables: 10 passthrough callers on one Hypervisor, total calls/s vs
 * python3-libvirt with 10 threads each on its own connection (target ≥ 1.0); the main thread's event-loop
 * delay p99 while 1,000 libvirt calls run at once on the Hypervisor's connection (target < 10 ms).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Hypervisor, type Guest } from '../src/hybrid/index.js';
import { QmpClient } from '../src/qmp/client.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/index.js';
import { pythonHasLibvirt, startPythonFleet } from './python-fleet.js';
import { QUERY_STATUS, startPythonQmp } from './python-qmp.js';
import { eventLoopDelayUnderCalls } from './event-loop.js';
import { callForSeconds, printTable, summarize, timeEach, type Row } from './table.js';

const execFileP = promisify(execFile);
const CALLERS = 10;
/** Seconds per round of the concurrent rows (three rounds each side, alternating). */
const CONCURRENT_SECONDS = Number(process.env.HYBRID_BENCH_CONCURRENT_SECONDS ?? 1.5);
/** Which parts run (default all): rtt, open, passthrough, concurrent, delay — e.g. HYBRID_BENCH_PARTS=passthrough. */
const PARTS = new Set((process.env.HYBRID_BENCH_PARTS ?? 'rtt,open,passthrough,concurrent,delay').split(','));

function row(name: string, times: number[], extra: Record<string, string | number> = {}): Row {
  // The median is the compared value: these machines are shared, and a few slow outliers from other
  // load would otherwise decide the ratio. The mean is printed beside it.
  const s = summarize(times);
  return { name, value: s.p50, unit: 'ms (p50)', extra: { mean: s.mean.toFixed(3), p99: s.p99.toFixed(3), min: s.min.toFixed(3), n: times.length, ...extra } };
}

export default async function (): Promise<void> {
  const lv = await startPrivateLibvirtd({ prefix: 'hbn' });
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {} });
  try {
    const guest = await hv.defineGuest(tinyGuestXml({ name: 'bench' }), { qmpSocket: true });
    await guest.start();
    const socket = (await guest.monitorSocket())!;
    await new Promise((r) => setTimeout(r, 500)); // let SeaBIOS settle

    if (PARTS.has('rtt')) await roundTrips(guest, socket, lv.uri);
    if (PARTS.has('open')) await openTimes(hv, socket);
    if (PARTS.has('passthrough')) await sequentialPassthrough(hv, guest, lv.uri);
    if (PARTS.has('concurrent')) await concurrentPassthrough(guest, lv.uri);
    if (PARTS.has('delay')) await eventLoopUnderLoad(hv, guest.name);
    await guest.destroy();
    await guest.undefine();
  } finally {
    await hv.close();
    await lv.stop();
  }
}

/** query-status round trips on the second monitor (interleaved), passthrough and virsh. */
async function roundTrips(guest: Guest, socket: string, uri: string): Promise<void> {
  const N = 2000;
  const rows: Row[] = [];
  // Interleaved rounds: the machine is shared and noisy, so each row sees the same conditions.
  const raw: number[] = [];
  const mon: number[] = [];
  const monNoValidate: number[] = [];
  for (let round = 0; round < 20; round++) {
    const base = await QmpClient.connect({ path: socket });
    raw.push(...(await timeEach(N / 20, () => base.execute('query-status'))));
    await base.close();
    const viaMonitor = await guest.qmp({ via: 'monitor' });
    mon.push(...(await timeEach(N / 20, () => viaMonitor.execute('query-status'))));
    await viaMonitor.close();
    const viaMonitorRaw = await guest.qmp({ via: 'monitor', validate: false });
    monNoValidate.push(...(await timeEach(N / 20, () => viaMonitorRaw.execute('query-status'))));
    await viaMonitorRaw.close();
  }
  rows.push(row('QMP-core client, same socket', raw));
  rows.push(row('guest.qmp() via monitor', mon, { note: 'policy + schema validation' }));
  rows.push(row('guest.qmp() via monitor, validate:false', monNoValidate, { note: 'policy only' }));

  const viaPassthrough = await guest.qmp({ via: 'passthrough' });
  rows.push(row('guest.qmp() via passthrough', await timeEach(1000, () => viaPassthrough.execute('query-status'))));
  await viaPassthrough.close();

  const virsh = await timeEach(30, () => execFileP('virsh', ['-c', uri, 'qemu-monitor-command', 'bench', '{"execute":"query-status"}']), 3);
  rows.push(row('virsh qemu-monitor-command (process)', virsh));
  printTable('query-status round trip, one guest (sequential)', rows, 'QMP-core client, same socket', 'monitor ≤ 1.10× QMP-core');
}

async function openTimes(hv: Hypervisor, socket: string): Promise<void> {
  const openings: [string, () => Promise<{ close(): Promise<void> }>][] = [
    ['QmpClient.connect({ path })', () => QmpClient.connect({ path: socket })],
    ['hv.guest(name) + guest.qmp() (auto → monitor)', async () => (await hv.guest('bench')).qmp()],
    ["hv.guest(name) + guest.qmp({ via: 'passthrough' })", async () => (await hv.guest('bench')).qmp({ via: 'passthrough' })],
  ];
  const openRows: Row[] = [];
  for (const [label, open] of openings) openRows.push(row(label, await timeEach(50, async () => (await open()).close(), 5)));
  printTable('open time', openRows, 'QmpClient.connect({ path })');
}

/**
 * query-status through passthrough, one call at a time: libqemu's two entry points and python3-libvirt's
 * two set-ups on the same guest with the same command text, each warmed up once (100 calls) and then timed
 * without further warm-up, in rounds of 100 calls whose order rotates, so that drift on this shared
 * machine hits every side alike.
 */
async function sequentialPassthrough(hv: Hypervisor, guest: Guest, uri: string): Promise<void> {
  const rounds = Number(process.env.HYBRID_BENCH_PASSTHROUGH_ROUNDS ?? 20);
  const perRound = 100;
  const client = await guest.qmp({ via: 'passthrough' });
  const dom = await hv.connection.lookupDomain(guest.name);
  const python = await startPythonQmp(uri, guest.name);
  const sides: { name: string; round: (n: number) => Promise<number[]> }[] = [
    { name: "guest.qmp({ via: 'passthrough' }).execute", round: (n) => timeEach(n, () => client.execute('query-status'), 0) },
    { name: 'domain.qemuMonitorCommand (libvirt layer)', round: (n) => timeEach(n, () => dom.qemuMonitorCommand(QUERY_STATUS), 0) },
  ];
  if (python) {
    sides.push({ name: 'python3-libvirt qemuMonitorCommand', round: (n) => python.plain.round(n) });
    sides.push({ name: 'python3-libvirt, event loop thread running', round: (n) => python.loop.round(n) });
  }
  const times = sides.map(() => [] as number[]);
  const roundP50s = sides.map(() => [] as number[]);
  try {
    for (let i = 0; i < 100; i++) await client.execute('query-status');
    for (let i = 0; i < 100; i++) await dom.qemuMonitorCommand(QUERY_STATUS);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < sides.length; k++) {
        const i = (k + r) % sides.length;
        const t = await sides[i]!.round(perRound);
        times[i]!.push(...t);
        roundP50s[i]!.push(summarize(t).p50);
      }
    }
  } finally {
    python?.plain.stop();
    python?.loop.stop();
    await client.close();
  }
  const base = python ? 2 : 0;
  const rows: Row[] = sides.map((side, i) => {
    const s = summarize(times[i]!);
    const perRoundRatio = summarize(roundP50s[i]!.map((p, r) => p / roundP50s[base]![r]!)).p50;
    return { name: side.name, value: s.mean, unit: 'ms/call (mean)', extra: { p50: s.p50.toFixed(3), p99: s.p99.toFixed(3), 'p50 ratio, median of rounds': perRoundRatio.toFixed(3), n: times[i]!.length } };
  });
  printTable('query-status through passthrough, one call at a time', rows, sides[base]!.name, python ? '≤ 1.10 vs python3-libvirt' : undefined);
  if (python) {
    const ours = summarize(times[0]!);
    const theirs = summarize(times[2]!);
    const ratio = ours.mean / theirs.mean;
    console.log(
      `passthrough per call, libqemu/python3-libvirt: mean ${ratio.toFixed(3)} ${ratio <= 1.1 ? 'OK' : 'MISSED'}, p50 ${(ours.p50 / theirs.p50).toFixed(3)}; ` +
        `vs python with its event loop running: mean ${(ours.mean / summarize(times[3]!).mean).toFixed(3)}, p50 ${(ours.p50 / summarize(times[3]!).p50).toFixed(3)}`,
    );
  } else {
    console.log('python3-libvirt not installed (/usr/bin/python3 + python3-libvirt): no baseline');
  }
}

/**
 * CALLERS passthrough clients of one guest on one Hypervisor, each calling query-status in a loop, against
 * python3-libvirt with CALLERS threads each on its own connection; rounds alternate so drift hits both.
 */
async function concurrentPassthrough(guest: Guest, uri: string): Promise<void> {
  const clients = await Promise.all(Array.from({ length: CALLERS }, () => guest.qmp({ via: 'passthrough' })));
  const python = pythonHasLibvirt() ? await startPythonFleet(uri, Array<string>(CALLERS).fill(guest.name)) : undefined;
  let ours = 0;
  let oursSeconds = 0;
  let theirs = 0;
  let theirsSeconds = 0;
  const times: number[] = [];
  const theirP50s: number[] = [];
  try {
    for (let round = 0; round < 3; round++) {
      const mine = await callForSeconds(clients, CONCURRENT_SECONDS);
      times.push(...mine.times);
      ours += mine.times.length;
      oursSeconds += mine.seconds;
      if (python) {
        const r = await python.calls(CONCURRENT_SECONDS);
        theirs += r.calls;
        theirsSeconds += r.seconds;
        if (r.p50 !== null) theirP50s.push(r.p50);
      }
    }
  } finally {
    python?.stop();
    await Promise.all(clients.map((c) => c.close()));
  }
  const rows: Row[] = [{ name: `libqemu, ${CALLERS} passthrough clients, one Hypervisor`, value: ours / oursSeconds, unit: 'calls/s', extra: { 'p50 ms': summarize(times).p50.toFixed(3), calls: ours } }];
  if (python) rows.push({ name: `python3-libvirt, ${CALLERS} threads each on its own connection`, value: theirs / theirsSeconds, unit: 'calls/s', extra: { 'p50 ms': `${summarize(theirP50s).p50.toFixed(3)} (median of rounds)`, calls: theirs } });
  printTable(
    `query-status through passthrough, ${CALLERS} concurrent callers on one guest (higher is better)`,
    rows,
    python ? rows[1]!.name : rows[0]!.name,
    '≥ 1.0× python3-libvirt',
  );
  if (python) {
    const ratio = ours / oursSeconds / (theirs / theirsSeconds);
    console.log(`${CALLERS} concurrent callers, libqemu/python3-libvirt calls/s: ${ratio.toFixed(3)} ${ratio >= 1 ? 'OK' : 'MISSED'}`);
  } else {
    console.log('python3-libvirt not installed (/usr/bin/python3 + python3-libvirt): no baseline');
  }
}

/** The main thread's event-loop delay while 1,000 passthrough calls run at once on the Hypervisor's connection. */
async function eventLoopUnderLoad(hv: Hypervisor, name: string): Promise<void> {
  await eventLoopDelayUnderCalls(await hv.connection.lookupDomain(name), "main-thread event-loop delay, 1,000 concurrent calls on the Hypervisor's connection", 'Hypervisor, p99 under 1,000 concurrent calls');
}
