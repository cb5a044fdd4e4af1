/**
 * A fleet in one process: FLEET_GUESTS (default 20) tiny running TCG guests on one private libvirtd and one
 * `Hypervisor`, each with a QMP client on each route (second monitor, passthrough) and an open
 * `guest.events()`. Printed: time to open all of that; total query-status calls/s on each route (every
 * guest's client calling at once for FLEET_SECONDS, default 3); event fan-in latency (suspend/resume on
 * every guest at once, ms from the command to each side's event, each expected exactly once); RSS and
 * threads per guest. Beside it, python3-libvirt driving the same guests: a thread per guest, each on its
 * own connection, for the passthrough calls/s, and one domain-wide QEMU-event registration for fan-in.
 */
import { readFileSync } from 'node:fs';
import { Hypervisor, type Guest, type GuestEventStream, type GuestQmpClient } from '../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/index.js';
import { pythonHasLibvirt, startPythonFleet, type PythonFleet } from './python-fleet.js';
import { callForSeconds, fmt, printTable, summarize, type Row } from './table.js';

/** A knob from the environment: a positive number (an integer where `integer`), else a clear error. */
function knob(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name];
  const v = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`);
  return v;
}

const GUESTS = knob('FLEET_GUESTS', 20, true);
const SECONDS = knob('FLEET_SECONDS', 3, false);
const ROUNDS = knob('FLEET_ROUNDS', 3, true);
/** The Hypervisor's lanes (libvirt connections); the default is the library's. */
const LANES = process.env.FLEET_LANES ? knob('FLEET_LANES', 4, true) : undefined;

/** RSS (MiB) and thread count of this process. */
function selfStatus(): { rssMiB: number; threads: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rssMiB: field('VmRSS') / 1024, threads: field('Threads') };
}

/** Every client calls query-status in a loop for `seconds`, all at once: total calls/s and per-call p50. */
async function callsPerSecond(clients: GuestQmpClient[], seconds: number): Promise<{ perSecond: number; p50: number; calls: number }> {
  const { times, seconds: elapsed } = await callForSeconds(clients, seconds);
  return { perSecond: times.length / elapsed, p50: summarize(times).p50, calls: times.length };
}

type Side = 'qmp (monitor, guest.events)' | 'libvirt lifecycle (guest.events)' | 'qmp (passthrough client)';
const SIDES: Side[] = ['qmp (monitor, guest.events)', 'libvirt lifecycle (guest.events)', 'qmp (passthrough client)'];

/**
 * Listens on every guest's stream and passthrough client; `round()` suspends then resumes every guest at
 * once and records, per side, the ms from the command to the event (first sighting) and how many came
 * more than once or not at all.
 */
function fanIn(guests: Guest[], streams: GuestEventStream[], passthrough: GuestQmpClient[]) {
  let phase: 'stop' | 'cont' | undefined;
  const issued = new Map<string, number>();
  const seen = new Map<string, number>(); // `${side}|${guest}` → count
  const latency = new Map<Side, number[]>(SIDES.map((s) => [s, []]));
  /** ms from issuing each suspend()/resume() to its return: the queue the events wait behind. */
  const returned: number[] = [];
  let changed: () => void = () => {};
  const record = (side: Side, guest: string, name: string) => {
    const now = performance.now();
    const want = side.startsWith('libvirt') ? { stop: 'suspended', cont: 'resumed' } : { stop: 'STOP', cont: 'RESUME' };
    if (!phase || name !== want[phase] || !issued.has(guest)) return;
    const k = `${side}|${guest}`;
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    if (n === 1) latency.get(side)!.push(now - issued.get(guest)!);
    changed();
  };
  streams.forEach((s, i) => {
    const guest = guests[i]!.name;
    void (async () => {
      for await (const ev of s) {
        if (ev.kind === 'qmp') record('qmp (monitor, guest.events)', guest, ev.event);
        else if (ev.kind === 'lifecycle') record('libvirt lifecycle (guest.events)', guest, ev.event);
      }
    })().catch(() => undefined);
  });
  passthrough.forEach((c, i) => c.on('event', (ev) => record('qmp (passthrough client)', guests[i]!.name, ev.event)));
  let missing = 0;
  let duplicates = 0;
  return {
    latency,
    returned,
    get missing() { return missing; },
    get duplicates() { return duplicates; },
    async round(): Promise<void> {
      for (const p of ['stop', 'cont'] as const) {
        phase = p;
        issued.clear();
        seen.clear();
        const all = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 20_000);
          changed = () => seen.size === guests.length * SIDES.length && (clearTimeout(timer), resolve());
        });
        await Promise.all(
          guests.map(async (g) => {
            const t0 = performance.now();
            issued.set(g.name, t0);
            await (p === 'stop' ? g.suspend() : g.resume());
            returned.push(performance.now() - t0);
          }),
        );
        await all;
        await new Promise((r) => setTimeout(r, 300)); // room for duplicates to show up
        missing += guests.length * SIDES.length - seen.size;
        for (const n of seen.values()) duplicates += n - 1;
        phase = undefined;
      }
    },
  };
}

export default async function (): Promise<void> {
  const wall = performance.now();
  const lv = await startPrivateLibvirtd({ prefix: 'flt' });
  let python: PythonFleet | undefined;
  const before = selfStatus();
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {}, ...(LANES ? { lanes: LANES } : {}) });
  try {
    let t = performance.now();
    const guests = await Promise.all(
      Array.from({ length: GUESTS }, (_, i) => hv.createGuest(tinyGuestXml({ name: `fleet${i}`, memoryMiB: 32 }), { qmpSocket: true })),
    );
    const startMs = performance.now() - t;
    await new Promise((r) => setTimeout(r, 500)); // let SeaBIOS settle

    // Time to open all: every guest's monitor client, passthrough client and event stream, at once.
    t = performance.now();
    const opened = await Promise.all(
      guests.map(async (g) => {
        const events = g.events({ qmp: ['STOP', 'RESUME'], libvirt: ['lifecycle'] });
        const [monitor, passthrough] = await Promise.all([g.qmp({ via: 'monitor' }), g.qmp({ via: 'passthrough' }), events.ready]);
        return { monitor, passthrough, events };
      }),
    );
    const openMs = performance.now() - t;
    const routes = opened.map((o) => o.events.qmpRoute);
    if (routes.some((r) => r !== 'monitor')) throw new Error(`guest.events() should use the monitor route here, got ${routes.join(',')}`);
    const monitors = opened.map((o) => o.monitor);
    const passthroughs = opened.map((o) => o.passthrough);
    const fan = fanIn(guests, opened.map((o) => o.events), passthroughs);

    // Throughput, one route at a time (and python after), so that each has the machine to itself.
    await callsPerSecond(monitors, 0.3);
    const mon = await callsPerSecond(monitors, SECONDS);
    await callsPerSecond(passthroughs, 0.3);
    const pass = await callsPerSecond(passthroughs, SECONDS);
    const loaded = selfStatus();
    // The same passthrough load on a Hypervisor with a lane per guest (libvirt connections are what bound it).
    const wideLanes = Math.min(GUESTS, 64);
    const wide = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {}, lanes: wideLanes });
    let passWide: Awaited<ReturnType<typeof callsPerSecond>>;
    let wideRss: number;
    try {
      const clients = await Promise.all(guests.map(async (g) => (await wide.guest(g.name)).qmp({ via: 'passthrough' })));
      // Lanes open on demand (a worker and a connection each): load until all are open before measuring.
      for (let i = 0; i < 40 && wide.connection.openLanes < wideLanes; i++) await callsPerSecond(clients, 0.25);
      passWide = await callsPerSecond(clients, SECONDS);
      wideRss = selfStatus().rssMiB - loaded.rssMiB;
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      await wide.close();
    }

    if (pythonHasLibvirt()) python = await startPythonFleet(lv.uri, guests.map((g) => g.name));
    const py = python ? await python.calls(SECONDS) : undefined;

    for (let r = 0; r < ROUNDS; r++) await fan.round();
    const pyFan = python ? await python.fanin(ROUNDS) : undefined;
    const pyStatus = python ? await python.status() : undefined;

    console.log(
      `\n${GUESTS} guests started in ${fmt(startMs / 1000)} s; opened ${GUESTS}× (monitor client + passthrough client + guest.events() ready) in ${fmt(openMs)} ms` +
        ` (${fmt(openMs / GUESTS)} ms per guest, all at once)`,
    );
    const rows: Row[] = [
      { name: 'libqemu monitor route (second monitor)', value: mon.perSecond, unit: 'calls/s', extra: { 'p50 ms': mon.p50.toFixed(3), calls: mon.calls } },
      { name: 'libqemu passthrough route', value: pass.perSecond, unit: 'calls/s', extra: { 'p50 ms': pass.p50.toFixed(3), calls: pass.calls } },
      {
        name: `libqemu passthrough route, lanes: ${wideLanes}`,
        value: passWide.perSecond,
        unit: 'calls/s',
        extra: { 'p50 ms': passWide.p50.toFixed(3), calls: passWide.calls, note: `+${wideRss.toFixed(0)} MiB RSS for its lanes` },
      },
    ];
    if (py) rows.push({ name: `python3-libvirt passthrough, ${GUESTS} threads/connections`, value: py.calls / py.seconds, unit: 'calls/s', extra: { 'p50 ms': py.p50?.toFixed(3) ?? '-', calls: py.calls } });
    printTable(
      `query-status, ${GUESTS} guests' clients calling at once for ${SECONDS} s, ${hv.connection.maxLanes} lanes, ${hv.connection.openLanes} open (higher is better)`,
      rows,
      py ? `python3-libvirt passthrough, ${GUESTS} threads/connections` : 'libqemu passthrough route',
      'passthrough ≥ 1.0× python3-libvirt',
    );
    if (py) {
      console.log(`passthrough libqemu/python3-libvirt: ${(pass.perSecond / (py.calls / py.seconds)).toFixed(3)}× with ${hv.connection.maxLanes} lanes (the default), ${(passWide.perSecond / (py.calls / py.seconds)).toFixed(3)}× with lanes: ${wideLanes}`);
    }

    const latRow = (name: string, xs: number[], extra: Record<string, string | number> = {}): Row => {
      const s = summarize(xs);
      return { name, value: s.p50, unit: 'ms p50', extra: { p99: s.p99.toFixed(1), max: Math.max(...xs).toFixed(1), n: xs.length, ...extra } };
    };
    const fanRows = SIDES.map((side) => latRow(`libqemu ${side}`, fan.latency.get(side)!));
    fanRows.push(latRow('libqemu suspend()/resume() returned', fan.returned, { note: 'the call itself' }));
    if (pyFan) {
      fanRows.push(latRow('python3-libvirt qmp (domain-wide registration)', pyFan.qmp));
      fanRows.push(latRow('python3-libvirt libvirt lifecycle', pyFan.lifecycle));
      fanRows.push(latRow('python3-libvirt suspend()/resume() returned', pyFan.returned, { note: 'the call itself' }));
    }
    printTable(
      `event fan-in: suspend/resume on all ${GUESTS} guests at once, ${ROUNDS} rounds; ms from the command to the event`,
      fanRows,
      pyFan ? 'python3-libvirt qmp (domain-wide registration)' : `libqemu ${SIDES[0]}`,
    );
    console.log(
      `each event once per guest and side: libqemu missing ${fan.missing}, duplicates ${fan.duplicates}` +
        (pyFan ? `; python3-libvirt missing ${pyFan.missing}, duplicates ${pyFan.duplicates}` : ''),
    );

    const resRows: Row[] = [
      { name: 'libqemu process, fleet open and loaded', value: loaded.rssMiB / GUESTS, unit: 'MiB RSS/guest', extra: { 'RSS MiB': loaded.rssMiB.toFixed(1), threads: loaded.threads, 'threads/guest': (loaded.threads / GUESTS).toFixed(2), 'growth MiB/guest': ((loaded.rssMiB - before.rssMiB) / GUESTS).toFixed(2), 'thread growth': loaded.threads - before.threads } },
    ];
    if (pyStatus) {
      const rss = pyStatus.rssKiB / 1024;
      // its threads counted while its callers run (one per guest); idle it keeps only the event loop's
      const threads = py?.threads ?? pyStatus.threads;
      resRows.push({ name: `python3-libvirt process, ${GUESTS + 1} connections`, value: rss / GUESTS, unit: 'MiB RSS/guest', extra: { 'RSS MiB': rss.toFixed(1), threads, 'threads/guest': (threads / GUESTS).toFixed(2) } });
    }
    printTable(`memory and threads (before the Hypervisor: ${before.rssMiB.toFixed(1)} MiB, ${before.threads} threads)`, resRows, 'libqemu process, fleet open and loaded');

    await Promise.all(opened.map(async (o) => {
      await o.events.return();
      await o.monitor.close();
      await o.passthrough.close();
    }));
    console.log(`fleet bench wall time ${fmt((performance.now() - wall) / 1000)} s (machine shared: figures are noisy)`);
  } finally {
    python?.stop();
    await hv.close();
    await lv.stop();
  }
}
