/**
 * QMP proxy overhead on one real guest (private libvirtd, tiny TCG guest with two second monitors):
 *  1. query-status round trip, one client: directly on a monitor socket vs through libqemu's proxy
 *     (backed by the guest's other second monitor, or by libvirt's passthrough) vs libvirt's own
 *     virt-qemu-qmp-proxy (passthrough). Same minimal raw client everywhere; rounds interleaved.
 *     Two floors for any proxy in its own process, in the same interleaving: a bare byte relay in its
 *     own Node process (no QMP at all: what the extra process hop alone costs here) and socat.
 *  2. Ten clients at once: per-call latency and throughput through libqemu's proxy (second monitor
 *     and passthrough, their ratio printed); whether virt-qemu-qmp-proxy greets a second client while
 *     the first is connected.
 *  3. A command with a 1 MiB argument: directly on a monitor socket vs through libqemu's proxy.
 * Targets: libqemu proxy (second monitor) and the CLI-started proxy / direct ≤ 1.3 per call with one
 * client; libqemu's passthrough proxy / virt-qemu-qmp-proxy ≤ 1.0 (both in their own processes); 1 MiB argument proxy / direct ≤ 2.0;
 * passthrough proxy / monitor proxy with ten clients ≥ 0.5 calls/s.
 * Ratios are given three ways: of the means over all calls, of the medians, and the median of the
 * per-round ratios of means (the machine is shared: one noisy stretch moves a mean, not a median).
 * LIBQEMU_BENCH_PROXY_BASELINE=<git rev> adds the CLI proxy as built from that revision to section 1.
 * Section 1 is measured twice: right after start (V8 still compiling every Node process's code) and in
 * the steady state a long-running proxy lives in, after a few thousand calls per path.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DomainXml } from '../src/domain/index.js';
import { Hypervisor, type GuestQmpClient } from '../src/hybrid/index.js';
import { QmpClient } from '../src/qmp/index.js';
import { PassthroughProxy, QmpProxy } from '../src/proxy/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/index.js';
import { RawQmpClient } from './raw-qmp-client.js';
import { printTable, summarize, timeEach } from './table.js';

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Compiles the package (tsc, as `npm run build` does) and returns the CLI's main module. The output goes
 * under node_modules/.cache so that it resolves the project's dependencies.
 */
function buildCli(): string {
  const root = join(import.meta.dirname, '..');
  return compileCli(root, join(root, 'node_modules', '.cache', 'libqemu-bench-build'));
}

/**
 * The CLI as of git revision `rev` (LIBQEMU_BENCH_PROXY_BASELINE), built the same way, so that a change's
 * before and after are measured in the same run.
 */
function buildBaselineCli(rev: string): string {
  const root = join(import.meta.dirname, '..');
  const src = join(root, 'node_modules', '.cache', 'libqemu-bench-baseline-src');
  rmSync(src, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  const archive = execFileSync('git', ['-C', root, 'archive', rev, 'src', 'native', 'tsconfig.json', 'tsconfig.build.json'], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', src], { input: archive });
  return compileCli(src, join(root, 'node_modules', '.cache', 'libqemu-bench-baseline-build'));
}

function compileCli(root: string, out: string): string {
  rmSync(out, { recursive: true, force: true });
  const tsc = join(import.meta.dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
  copyFileSync(join(root, 'native', 'libvirt.h'), join(out, 'native', 'libvirt.h'));
  return join(out, 'src', 'cli', 'main.js');
}

/**
 * `libqemu … proxy --listen listen` from a built CLI, in its own process: on a raw monitor socket
 * (`target` a path), or on a libvirt guest's passthrough route (`target` a URI and a guest's name).
 */
function spawnCliProxy(cliMain: string, target: string | { uri: string; guest: string }, listen: string): ChildProcess {
  const runCli = `const { main } = await import(${JSON.stringify(pathToFileURL(cliMain).href)}); process.exit(await main(process.argv.slice(1)));`;
  const backend = typeof target === 'string' ? ['--socket', target] : ['-c', target.uri, '-d', target.guest, '--via', 'passthrough'];
  return spawn(process.execPath, ['--input-type=module', '-e', runCli, '--', ...backend, 'proxy', '--listen', listen], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A bare byte relay (no QMP, no parsing) from `listen` to `target`, in its own Node process: the floor
 * for any proxy that runs as a separate Node process.
 */
function spawnByteRelay(listen: string, target: string): ChildProcess {
  const script = `const net = require('node:net'); net.createServer((c) => { const u = net.connect(${JSON.stringify(target)}); c.pipe(u); u.pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); }).listen(${JSON.stringify(listen)});`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * CPU time a process and its children (socat forks one per connection) have used so far, all threads,
 * in ms (Linux: /proc/PID/task/TID/schedstat).
 */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) {
          const ms = cpuMs(Number(child));
          if (!Number.isNaN(ms)) ns += ms * 1e6; // a child that ended meanwhile
        }
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return NaN;
  }
  return ns / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Ten clients, each running `perClient` sequential calls, all at once. */
async function tenClients(path: string, perClient: number): Promise<{ mean: number; p99: number; perSecond: number }> {
  const clients = await Promise.all(Array.from({ length: 10 }, () => RawQmpClient.open(path)));
  try {
    // Warm up all at once: the passthrough backend opens its lanes (libvirt connections) when calls wait.
    for (let round = 0; round < 3; round++) await Promise.all(clients.map(async (c) => { for (let i = 0; i < 20; i++) await c.call('query-status'); }));
    const t0 = process.hrtime.bigint();
    const times = (await Promise.all(clients.map((c) => timeEach(perClient, () => c.call('query-status'), 0)))).flat();
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const s = summarize(times);
    return { mean: s.mean, p99: s.p99, perSecond: (times.length / wallMs) * 1000 };
  } finally {
    for (const c of clients) c.close();
  }
}

export default async function proxyBench(): Promise<void> {
  const lv = await startPrivateLibvirtd({ prefix: 'lqpb' });
  const tmp = mkdtempSync(join(tmpdir(), 'lq-pb-'));
  let hv: Hypervisor | undefined;
  let virtProxy: ChildProcess | undefined;
  let cliProxy: ChildProcess | undefined;
  let cliPassthroughProxy: ChildProcess | undefined;
  let baselineProxy: ChildProcess | undefined;
  const baselineRev = process.env.LIBQEMU_BENCH_PROXY_BASELINE;
  let nodeRelay: ChildProcess | undefined;
  let socatRelay: ChildProcess | undefined;
  const clients: (GuestQmpClient | QmpClient)[] = [];
  const proxies: QmpProxy[] = [];
  const threadProxies: PassthroughProxy[] = [];
  try {
    hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
    // Second monitors: the one the facade picks (a proxy backend through guest.qmp()), one for a plain
    // QmpClient backend, one for the direct baseline, one for the CLI proxy and two for the relays.
    const xml = DomainXml.parse(tinyGuestXml({ name: 'pb1', qmpSocket: join(lv.qmpDir, 'a.sock') }));
    for (const name of ['b', 'c', 'd', 'e', ...(baselineRev ? ['f'] : [])]) xml.addMonitorSocket(join(lv.qmpDir, `${name}.sock`));
    const guest = await hv.createGuest(xml.toString(), { qmpSocket: true });
    const facadeSocket = await guest.monitorSocket();
    const [directPath, plainPath, cliPath, nodeRelayTarget, socatTarget, baselineTarget] = DomainXml.parse(await guest.xml())
      .monitorSockets()
      .map((m) => m.path)
      .filter((p) => p !== facadeSocket) as [string, string, string, string, string, string | undefined];
    for (const p of [directPath, plainPath, cliPath, nodeRelayTarget, socatTarget, baselineTarget]) if (p) await waitForFile(p, 10_000);
    const plain = await QmpClient.connect({ path: plainPath }, { timeoutMs: 0 });

    const viaMonitor = await guest.qmp({ via: 'monitor', validate: false, timeoutMs: 0 });
    const viaPassthrough = await guest.qmp({ via: 'passthrough', validate: false, timeoutMs: 0 });
    clients.push(viaMonitor, viaPassthrough, plain);
    proxies.push(await QmpProxy.start(plain, { listen: join(tmp, 'p', 'plain.sock') }));
    proxies.push(await QmpProxy.start(viaMonitor, { listen: join(tmp, 'p', 'monitor.sock') }));
    proxies.push(await QmpProxy.start(viaPassthrough, { listen: join(tmp, 'p', 'passthrough.sock') }));
    const [plainProxy, monitorProxy, passthroughRelay] = proxies as [QmpProxy, QmpProxy, QmpProxy];
    // The passthrough proxy as the library offers it: its clients served on a thread that makes the libvirt calls.
    const passthroughProxy = await PassthroughProxy.start(guest, { listen: join(tmp, 'p', 'thread.sock') });
    threadProxies.push(passthroughProxy);

    // `libqemu proxy` as its own process, as an operator would run it (on a raw monitor socket), from
    // compiled JavaScript as an installed package runs it (a dev checkout's bin would run tsx instead).
    const cliListen = join(tmp, 'cli', 'p.sock');
    const cliMain = buildCli();
    cliProxy = spawnCliProxy(cliMain, cliPath, cliListen);
    await waitForFile(cliListen, 60_000);
    // and on the passthrough route, in its own process as virt-qemu-qmp-proxy is
    const cliPassthroughListen = join(tmp, 'cli-pt', 'p.sock');
    cliPassthroughProxy = spawnCliProxy(cliMain, { uri: lv.uri, guest: 'pb1' }, cliPassthroughListen);
    let cliPassthroughErr = '';
    cliPassthroughProxy.stderr!.setEncoding('utf8').on('data', (d: string) => (cliPassthroughErr += d));
    await waitForFile(cliPassthroughListen, 60_000).catch((err: unknown) => {
      throw new Error(`libqemu proxy --via passthrough did not start: ${String(err)}\n${cliPassthroughErr}`);
    });
    const baselineListen = join(tmp, 'cli-baseline', 'p.sock');
    if (baselineRev && baselineTarget) {
      baselineProxy = spawnCliProxy(buildBaselineCli(baselineRev), baselineTarget, baselineListen);
      await waitForFile(baselineListen, 60_000);
    }

    const relayDir = mkdtempSync(join(tmp, 'relay-'));
    const nodeRelayPath = join(relayDir, 'node.sock');
    nodeRelay = spawnByteRelay(nodeRelayPath, nodeRelayTarget);
    const socatPath = join(relayDir, 'socat.sock');
    socatRelay = spawn('socat', [`UNIX-LISTEN:${socatPath},fork,mode=600`, `UNIX-CONNECT:${socatTarget}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForFile(nodeRelayPath, 15_000);
    await waitForFile(socatPath, 15_000);

    const virtPath = join(tmp, 'virt-qemu-qmp-proxy.sock');
    virtProxy = spawn('/usr/bin/python3', ['/usr/bin/virt-qemu-qmp-proxy', '-c', lv.uri, 'pb1', virtPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let virtErr = '';
    virtProxy.stderr!.setEncoding('utf8').on('data', (d: string) => (virtErr += d));
    await waitForFile(virtPath, 15_000).catch((err: unknown) => {
      throw new Error(`virt-qemu-qmp-proxy did not start: ${String(err)}\n${virtErr}`);
    });

    // ---- 1. one client, sequential, rounds interleaved ----
    const paths = {
      'direct monitor socket': directPath,
      'libqemu proxy (plain QmpClient on a monitor)': plainProxy.path,
      'libqemu proxy (second monitor)': monitorProxy.path,
      'libqemu proxy (CLI process, raw monitor)': cliListen,
      ...(baselineProxy ? { [`libqemu proxy (CLI process, ${baselineRev})`]: baselineListen } : {}),
      'floor: bare byte relay, own Node process': nodeRelayPath,
      'floor: socat relay, own process': socatPath,
      'libqemu proxy (passthrough)': passthroughProxy.path,
      'QmpProxy on guest.qmp() passthrough (main-thread relay)': passthroughRelay.path,
      'libqemu proxy (CLI process, passthrough)': cliPassthroughListen,
      'virt-qemu-qmp-proxy (passthrough)': virtPath,
    };
    const one: Record<string, RawQmpClient> = {};
    for (const [name, path] of Object.entries(paths)) one[name] = await RawQmpClient.open(path);
    // Interleaved call by call, so that the (shared, noisy) machine's load drifts over every path alike;
    // the passthrough paths, ~5× slower, take every third turn.
    const passthrough = (name: string) => name.includes('passthrough');
    const rounds = 6;
    /** Rounds of `perRound` calls per path, interleaved; per path its times, and per round and path its mean. */
    // The relays and CLI proxies run in their own processes: the CPU they spend per call is measured too,
    // a steadier figure than latency on a shared machine (it does not include waiting for a CPU).
    const ownProcess: Record<string, number | undefined> = {
      'libqemu proxy (CLI process, raw monitor)': cliProxy.pid,
      'libqemu proxy (CLI process, passthrough)': cliPassthroughProxy.pid,
      'virt-qemu-qmp-proxy (passthrough)': virtProxy.pid,
      ...(baselineProxy ? { [`libqemu proxy (CLI process, ${baselineRev})`]: baselineProxy.pid } : {}),
      'floor: bare byte relay, own Node process': nodeRelay.pid,
      'floor: socat relay, own process': socatRelay.pid,
    };
    const measure = async (perRound: number) => {
      const cpuBefore = Object.fromEntries(Object.entries(ownProcess).map(([k, pid]) => [k, cpuMs(pid)]));
      const times: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
      const roundMeans: Record<string, number>[] = [];
      for (let round = 0; round < rounds; round++) {
        const start = Object.fromEntries(Object.keys(paths).map((k) => [k, times[k]!.length]));
        for (let i = 0; i < perRound; i++) {
          for (const [name, c] of Object.entries(one)) {
            if (passthrough(name) && i % 3 !== 0) continue;
            const t0 = process.hrtime.bigint();
            await c.call('query-status');
            times[name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
          }
        }
        roundMeans.push(Object.fromEntries(Object.keys(paths).map((k) => [k, summarize(times[k]!.slice(start[k]!)).mean])));
      }
      const cpuPerCallUs = Object.fromEntries(Object.entries(ownProcess).map(([k, pid]) => [k, ((cpuMs(pid) - cpuBefore[k]!) * 1000) / times[k]!.length]));
      return { times, roundMeans, cpuPerCallUs };
    };
    const report = (phase: string, { times, roundMeans, cpuPerCallUs }: Awaited<ReturnType<typeof measure>>) => {
      printTable(
        `query-status round trip, one client, ${phase} (paths interleaved call by call)`,
        Object.keys(paths).map((name) => {
          const s = summarize(times[name]!);
          const cpu = cpuPerCallUs[name];
          return { name, value: s.mean, unit: 'ms', extra: { p50: `${s.p50.toFixed(3)} ms`, p99: `${s.p99.toFixed(3)} ms`, calls: times[name]!.length, 'its process: CPU/call': cpu === undefined ? '-' : `${cpu.toFixed(0)} µs` } };
        }),
        'direct monitor socket',
        'libqemu proxy (second monitor, through guest.qmp()) ≤ 1.30× direct',
      );
      const ratioRow = (name: string, a: string, b: string, target: string) => {
        const sa = summarize(times[a]!);
        const sb = summarize(times[b]!);
        const perRoundRatio = median(roundMeans.map((r) => r[a]! / r[b]!));
        return { name, value: sa.mean / sb.mean, unit: '×', extra: { 'of medians': `${(sa.p50 / sb.p50).toFixed(3)}×`, [`median of ${rounds} rounds`]: `${perRoundRatio.toFixed(3)}×`, target } };
      };
      printTable(
        `${phase}: the same calls, ratios the issue sets targets for (value: ratio of the means)`,
        [
          ratioRow('CLI-started proxy / direct', 'libqemu proxy (CLI process, raw monitor)', 'direct monitor socket', '≤ 1.30'),
          ratioRow('second-monitor proxy / direct', 'libqemu proxy (second monitor)', 'direct monitor socket', '≤ 1.30'),
          // The target compares like with like: libqemu's passthrough proxy in its own process, as virt-qemu-qmp-proxy runs.
          ratioRow('passthrough proxy / virt-qemu-qmp-proxy (both own processes)', 'libqemu proxy (CLI process, passthrough)', 'virt-qemu-qmp-proxy (passthrough)', '≤ 1.00'),
          // In the bench's own process the clients share a thread with the in-process proxies: references only.
          ratioRow('PassthroughProxy in the bench process / virt-qemu-qmp-proxy', 'libqemu proxy (passthrough)', 'virt-qemu-qmp-proxy (passthrough)', '(reference)'),
          ratioRow('QmpProxy on a passthrough guest.qmp(), bench process / virt-qemu-qmp-proxy', 'QmpProxy on guest.qmp() passthrough (main-thread relay)', 'virt-qemu-qmp-proxy (passthrough)', '(reference: relay through the lanes)'),
          ratioRow('floor: bare Node byte relay process / direct', 'floor: bare byte relay, own Node process', 'direct monitor socket', '(reference)'),
          ratioRow('floor: socat relay / direct', 'floor: socat relay, own process', 'direct monitor socket', '(reference)'),
          ratioRow('CLI-started proxy / bare Node byte relay', 'libqemu proxy (CLI process, raw monitor)', 'floor: bare byte relay, own Node process', '(what QMP handling adds; ≤ ~1.1)'),
          ...(baselineProxy
            ? [
                ratioRow(`CLI-started proxy at ${baselineRev} / direct`, `libqemu proxy (CLI process, ${baselineRev})`, 'direct monitor socket', '(before)'),
                ratioRow(`CLI-started proxy / at ${baselineRev}`, 'libqemu proxy (CLI process, raw monitor)', `libqemu proxy (CLI process, ${baselineRev})`, '(after / before)'),
              ]
            : []),
        ],
        '',
      );
    };
    for (const [name, c] of Object.entries(one)) for (let i = 0; i < (passthrough(name) ? 20 : 50); i++) await c.call('query-status');
    // Just started: V8 still runs most of each Node process's code unoptimised and compiles it on the
    // side (the processes' other threads), which on 2 shared cores costs every Node path here, relays too.
    const early = await measure(200);
    // A proxy serves for hours: measure it again once every path has run a few thousand calls (its
    // latency stops improving after ~3,000 calls here).
    const warmUpCalls = 4000;
    for (let i = 0; i < warmUpCalls; i++) {
      // the passthrough paths too: 2,000 calls each (a proxy thread is a V8 isolate of its own, compiled by its own calls)
      for (const [name, c] of Object.entries(one)) if (!passthrough(name) || i % 2 === 0) await c.call('query-status');
    }
    const steady = await measure(200);
    const times = steady.times;

    // A second client of virt-qemu-qmp-proxy while the first one is connected.
    const secondVirt = await RawQmpClient.open(virtPath, { greetingTimeoutMs: 2000 }).then(
      (c) => (c.close(), 'greeted'),
      () => 'no greeting within 2 s',
    );
    for (const c of Object.values(one)) c.close();

    console.log(`(load average while measuring: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${(await import('node:os')).cpus().length} cores; QEMU's own dispatch is the ~0.45 ms floor)`);
    report('first 1,250 calls of each path (Node processes still compiling)', early);
    report(`steady state (after ${warmUpCalls + 1250} calls of each path)`, steady);

    // ---- 3. a 1 MiB argument (QEMU reads its monitor slowly: a few rounds, interleaved) ----
    const big = { implements: 'x'.repeat(1024 * 1024) };
    const bigPaths = { 'direct monitor socket': directPath, 'libqemu proxy (plain QmpClient on a monitor)': plainProxy.path };
    const bigTimes: Record<string, number[]> = { 'direct monitor socket': [], 'libqemu proxy (plain QmpClient on a monitor)': [] };
    const bigClients = Object.fromEntries(await Promise.all(Object.entries(bigPaths).map(async ([n, p]) => [n, await RawQmpClient.open(p)] as const)));
    for (let round = 0; round < 3; round++) {
      for (const [name, c] of Object.entries(bigClients)) {
        const t0 = process.hrtime.bigint();
        await c.call('qom-list-types', big);
        bigTimes[name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    for (const c of Object.values(bigClients)) c.close();
    printTable(
      'qom-list-types with a 1 MiB argument (3 rounds, interleaved)',
      Object.entries(bigTimes).map(([name, t]) => ({ name, value: summarize(t).mean, unit: 'ms', extra: { calls: t.length } })),
      'direct monitor socket',
      'proxy ≤ 2.0× direct',
    );

    // ---- 2. ten clients at once ----
    const tenMonitor = await tenClients(monitorProxy.path, 100);
    const tenPassthrough = await tenClients(passthroughProxy.path, 40);
    const tenRelay = await tenClients(passthroughRelay.path, 40);
    const directOne = summarize(times['direct monitor socket']!);
    printTable(
      'query-status with ten clients at once (each sequential; latency per call, throughput over all)',
      [
        { name: 'direct monitor socket, 1 client (reference)', value: directOne.mean, unit: 'ms', extra: { 'calls/s': Math.round(1000 / directOne.mean), clients: 'QEMU serves 1 client per socket' } },
        { name: 'libqemu proxy (second monitor), 10 clients', value: tenMonitor.mean, unit: 'ms', extra: { 'calls/s': Math.round(tenMonitor.perSecond), clients: '10 served at once' } },
        { name: 'libqemu proxy (passthrough), 10 clients', value: tenPassthrough.mean, unit: 'ms', extra: { 'calls/s': Math.round(tenPassthrough.perSecond), clients: '10 served at once, one libvirt call at a time' } },
        { name: 'QmpProxy on guest.qmp() passthrough, 10 clients', value: tenRelay.mean, unit: 'ms', extra: { 'calls/s': Math.round(tenRelay.perSecond), clients: '10 served at once, side by side on the lanes' } },
        { name: 'virt-qemu-qmp-proxy, 10 clients', value: NaN, unit: '', extra: { 'calls/s': '-', clients: `2nd client: ${secondVirt}` } },
      ],
      'direct monitor socket, 1 client (reference)',
    );
    printTable(
      'ten clients: throughput of the passthrough proxy next to the monitor proxy (each proxy client in order, different clients side by side on the backend lanes; libvirt still sends one command at a time on the domain monitor)',
      [
        { name: 'libqemu proxy (second monitor), 10 clients', value: tenMonitor.perSecond, unit: 'calls/s' },
        { name: 'libqemu proxy (passthrough), 10 clients', value: tenPassthrough.perSecond, unit: 'calls/s' },
        { name: 'QmpProxy on guest.qmp() passthrough, 10 clients', value: tenRelay.perSecond, unit: 'calls/s' },
      ],
      'libqemu proxy (second monitor), 10 clients',
      'passthrough ≥ 0.50× the monitor proxy (higher is better)',
    );
  } finally {
    for (const child of [cliProxy, cliPassthroughProxy, baselineProxy, nodeRelay, socatRelay]) {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
    if (virtProxy && virtProxy.exitCode === null) {
      virtProxy.kill('SIGTERM');
      await new Promise((r) => virtProxy!.once('exit', r));
    }
    for (const p of [...proxies, ...threadProxies]) await p.close();
    for (const c of clients) await c.close().catch(() => undefined);
    await hv?.close();
    await lv.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
