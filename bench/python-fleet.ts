/**
 * python3-libvirt driving many guests at once, the way a python program gets parallel calls: one thread
 * per caller, each on its own libvirt connection, plus one connection with the default event loop in a
 * thread for events. Shared by the fleet benchmark (20 guests) and the concurrency rows (10 callers on
 * one guest: the same name given 10 times).
 */
import { existsSync } from 'node:fs';
import { startPythonBaseline, type PythonBaseline } from './python-baseline.js';

// Requests (one line each, one JSON line back): `calls <seconds>`, `fanin <rounds>`, `status`.
const SCRIPT = `
import json, sys, time, threading, libvirt, libvirt_qemu
uri, names = sys.argv[1], sys.argv[2].split(',')
libvirt.virEventRegisterDefaultImpl()
def run_loop():
    while True: libvirt.virEventRunDefaultImpl()
threading.Thread(target=run_loop, daemon=True).start()
cmd = '{"execute":"query-status"}'
conns = [libvirt.open(uri) for _ in names]
doms = [c.lookupByName(n) for c, n in zip(conns, names)]
for d in doms:
    for _ in range(5): libvirt_qemu.qemuMonitorCommand(d, cmd, 0)
econn = libvirt.open(uri)
cond = threading.Condition()
phase = [None]
issued, seen = {}, {}
lat = {'qmp': [], 'lifecycle': [], 'returned': []}
EXPECT = {'qmp': {'stop': 'STOP', 'cont': 'RESUME'}, 'lifecycle': {'stop': 'suspended', 'cont': 'resumed'}}
def record(side, name, ev):
    now = time.perf_counter_ns()
    with cond:
        p = phase[0]
        if p is None or ev != EXPECT[side][p] or name not in issued: return
        k = (side, name)
        seen[k] = seen.get(k, 0) + 1
        if seen[k] == 1: lat[side].append((now - issued[name]) / 1e6)
        cond.notify_all()
def on_qmp(conn, dom, event, secs, micros, details, opaque): record('qmp', dom.name(), event)
def on_life(conn, dom, event, detail, opaque):
    if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED: record('lifecycle', dom.name(), 'suspended')
    elif event == libvirt.VIR_DOMAIN_EVENT_RESUMED: record('lifecycle', dom.name(), 'resumed')
# domain NULL: one registration for every guest's QEMU events (per-domain unfiltered ones lose events in libvirt 9.0)
libvirt_qemu.qemuMonitorEventRegister(econn, None, None, on_qmp, None, 0)
econn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_life, None)

def run_threads(fn, items):
    ts = [threading.Thread(target=fn, args=(i, x)) for i, x in enumerate(items)]
    for t in ts: t.start()
    for t in ts: t.join()

def calls(seconds):
    counts = [0] * len(doms)
    times = [[] for _ in doms]
    barrier = threading.Barrier(len(doms))
    start = [0.0]
    def loop(i, d):
        barrier.wait()
        if i == 0: start[0] = time.perf_counter()
        end = time.perf_counter() + seconds
        n, t = 0, times[i]
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            libvirt_qemu.qemuMonitorCommand(d, cmd, 0)
            t.append((time.perf_counter_ns() - t0) / 1e6)
            n += 1
        counts[i] = n
    peak = [0]
    def sample():
        while not done[0]:
            peak[0] = max(peak[0], status()['threads']); time.sleep(0.2)
    done = [False]
    sampler = threading.Thread(target=sample); sampler.start()
    run_threads(loop, doms)
    done[0] = True; sampler.join()
    elapsed = time.perf_counter() - start[0]
    all_t = sorted(x for t in times for x in t)
    return {'calls': sum(counts), 'seconds': elapsed, 'p50': all_t[len(all_t) // 2] if all_t else None, 'threads': peak[0]}

def fanin(rounds):
    unique = list({d.name(): d for d in doms}.values())
    for v in lat.values(): v.clear()
    dupes = missing = 0
    for _ in range(rounds):
        for p in ('stop', 'cont'):
            with cond:
                phase[0] = p; issued.clear(); seen.clear()
            barrier = threading.Barrier(len(unique))
            def one(i, d):
                barrier.wait()
                t0 = time.perf_counter_ns()
                with cond: issued[d.name()] = t0
                d.suspend() if p == 'stop' else d.resume()
                with cond: lat['returned'].append((time.perf_counter_ns() - t0) / 1e6)
            run_threads(one, unique)
            deadline = time.time() + 20
            with cond:
                while len(seen) < 2 * len(unique) and time.time() < deadline: cond.wait(0.5)
            time.sleep(0.3)  # room for duplicates to show up
            with cond:
                missing += 2 * len(unique) - len(seen)
                dupes += sum(v - 1 for v in seen.values())
                phase[0] = None
    return {'qmp': lat['qmp'], 'lifecycle': lat['lifecycle'], 'returned': lat['returned'], 'missing': missing, 'duplicates': dupes}

def status():
    out = {}
    for line in open('/proc/self/status'):
        k, _, v = line.partition(':')
        if k == 'VmRSS': out['rssKiB'] = int(v.split()[0])
        if k == 'Threads': out['threads'] = int(v)
    return out

print('[]', flush=True)
for line in sys.stdin:
    what, *args = line.split()
    if what == 'calls': print(json.dumps(calls(float(args[0]))), flush=True)
    elif what == 'fanin': print(json.dumps(fanin(int(args[0]))), flush=True)
    elif what == 'status': print(json.dumps(status()), flush=True)
    else: print(json.dumps({'error': what}), flush=True)
`;

export interface PythonFleet {
  /** Every thread calls passthrough query-status on its own connection for `seconds`. */
  calls(seconds: number): Promise<{ calls: number; seconds: number; p50: number | null; /** the process's threads while calling */ threads: number }>;
  /** `rounds` of suspend-all/resume-all (one thread per guest); ms from each command to its events. */
  fanin(rounds: number): Promise<{ qmp: number[]; lifecycle: number[]; /** command issued → returned */ returned: number[]; missing: number; duplicates: number }>;
  /** The python process's RSS (KiB) and thread count. */
  status(): Promise<{ rssKiB: number; threads: number }>;
  stop(): void;
}

export function pythonHasLibvirt(): boolean {
  return existsSync('/usr/bin/python3') && existsSync('/usr/lib/python3/dist-packages/libvirt_qemu.py');
}

/** One python3-libvirt process with a thread and a connection per entry of `names` (repeat a name for several callers on one guest). */
export async function startPythonFleet(uri: string, names: string[]): Promise<PythonFleet> {
  const p: PythonBaseline = await startPythonBaseline(SCRIPT, uri, names.join(','), true);
  return {
    calls: (seconds) => p.ask(`calls ${seconds}`),
    fanin: (rounds) => p.ask(`fanin ${rounds}`),
    status: () => p.ask('status'),
    stop: () => p.stop(),
  };
}
