/**
 * QMP proxy overhead on one real guest (private libvirtd, tiny TCG guest with two second monitors):
 *  1. query-status round trip, one client: directly on a monitor socket vs through libqemu's proxy
 *     (backed by the guest's other second monitor, or by libvirt's passthrough) vs libvirt's own
 *     virt-qemu-qmp-proxy (passthrough). Same minimal raw client everywhere; rounds interleaved.
 *  2. Ten clients at once: per-call latency and throughput through libqemu's proxy; whether
 *     virt-qemu-qmp-proxy greets a second client while the first is connected.
 *  3. A command with a 1 MiB argument: directly on a monitor socket vs through libqemu's proxy.
 * Targets: libqemu proxy (second monitor) and the CLI-started proxy / direct ≤ 1.3 per call with one
 * client; libqemu's passthrough proxy / virt-qemu-qmp-proxy ≤ 1.0; 1 MiB argument proxy / direct ≤ 2.0.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DomainXml } from '../src/domain/index.js';
import { Hypervisor, type GuestQmpClient } from '../src/hybrid/index.js';
import { QmpClient } from '../src/qmp/index.js';
import { QmpProxy } from '../src/proxy/index.js';
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
  const out = join(root, 'node_modules', '.cache', 'libqemu-bench-build');
  rmSync(out, { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
  copyFileSync(join(root, 'native', 'libvirt.h'), join(out, 'native', 'libvirt.h'));
  return join(out, 'src', 'cli', 'main.js');
}

/** Ten clients, each running `perClient` sequential calls, all at once. */
async function tenClients(path: string, perClient: number): Promise<{ mean: number; p99: number; perSecond: number }> {
  const clients = await Promise.all(Array.from({ length: 10 }, () => RawQmpClient.open(path)));
  try {
    for (const c of clients) for (let i = 0; i < 20; i++) await c.call('query-status');
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
  const clients: (GuestQmpClient | QmpClient)[] = [];
  const proxies: QmpProxy[] = [];
  try {
    hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
    // Three second monitors: the one the facade picks (a proxy backend through guest.qmp()), one for a
    // plain QmpClient backend, and one for the direct baseline.
    const xml = DomainXml.parse(tinyGuestXml({ name: 'pb1', qmpSocket: join(lv.qmpDir, 'a.sock') }));
    xml.addMonitorSocket(join(lv.qmpDir, 'b.sock'));
    xml.addMonitorSocket(join(lv.qmpDir, 'c.sock'));
    const guest = await hv.createGuest(xml.toString(), { qmpSocket: true });
    const facadeSocket = await guest.monitorSocket();
    const [directPath, plainPath, cliPath] = DomainXml.parse(await guest.xml())
      .monitorSockets()
      .map((m) => m.path)
      .filter((p) => p !== facadeSocket) as [string, string, string];
    await waitForFile(directPath, 10_000);
    await waitForFile(plainPath, 10_000);
    const plain = await QmpClient.connect({ path: plainPath }, { timeoutMs: 0 });

    const viaMonitor = await guest.qmp({ via: 'monitor', validate: false, timeoutMs: 0 });
    const viaPassthrough = await guest.qmp({ via: 'passthrough', validate: false, timeoutMs: 0 });
    clients.push(viaMonitor, viaPassthrough, plain);
    proxies.push(await QmpProxy.start(plain, { listen: join(tmp, 'p', 'plain.sock') }));
    proxies.push(await QmpProxy.start(viaMonitor, { listen: join(tmp, 'p', 'monitor.sock') }));
    proxies.push(await QmpProxy.start(viaPassthrough, { listen: join(tmp, 'p', 'passthrough.sock') }));
    const [plainProxy, monitorProxy, passthroughProxy] = proxies as [QmpProxy, QmpProxy, QmpProxy];

    // `libqemu proxy` as its own process, as an operator would run it (on a raw monitor socket), from
    // compiled JavaScript as an installed package runs it (a dev checkout's bin would run tsx instead).
    const cliListen = join(tmp, 'cli', 'p.sock');
    const cliMain = buildCli();
    const runCli = `const { main } = await import(${JSON.stringify(pathToFileURL(cliMain).href)}); process.exit(await main(process.argv.slice(1)));`;
    cliProxy = spawn(process.execPath, ['--input-type=module', '-e', runCli, '--', '--socket', cliPath, 'proxy', '--listen', cliListen], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForFile(cliListen, 60_000);

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
      'libqemu proxy (passthrough)': passthroughProxy.path,
      'virt-qemu-qmp-proxy (passthrough)': virtPath,
    };
    const one: Record<string, RawQmpClient> = {};
    for (const [name, path] of Object.entries(paths)) one[name] = await RawQmpClient.open(path);
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
    // Interleaved call by call, so that the (shared, noisy) machine's load drifts over every path alike;
    // the passthrough paths, ~5× slower, take every third turn.
    const passthrough = (name: string) => name.includes('passthrough');
    for (const [name, c] of Object.entries(one)) for (let i = 0; i < (passthrough(name) ? 20 : 50); i++) await c.call('query-status');
    for (let i = 0; i < 1200; i++) {
      for (const [name, c] of Object.entries(one)) {
        if (passthrough(name) && i % 3 !== 0) continue;
        const t0 = process.hrtime.bigint();
        await c.call('query-status');
        times[name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }

    // A second client of virt-qemu-qmp-proxy while the first one is connected.
    const secondVirt = await RawQmpClient.open(virtPath, { greetingTimeoutMs: 2000 }).then(
      (c) => (c.close(), 'greeted'),
      () => 'no greeting within 2 s',
    );
    for (const c of Object.values(one)) c.close();

    console.log(`(load average while measuring: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${(await import('node:os')).cpus().length} cores; QEMU's own dispatch is the ~0.45 ms floor)`);
    printTable(
      'query-status round trip, one client (paths interleaved call by call)',
      Object.keys(paths).map((name) => {
        const s = summarize(times[name]!);
        return { name, value: s.mean, unit: 'ms', extra: { p50: `${s.p50.toFixed(3)} ms`, p99: `${s.p99.toFixed(3)} ms`, calls: times[name]!.length } };
      }),
      'direct monitor socket',
      'libqemu proxy (second monitor, through guest.qmp()) ≤ 1.30× direct',
    );

    printTable(
      'the same calls, ratios the issue sets targets for',
      [
        { name: 'CLI-started proxy / direct', value: summarize(times['libqemu proxy (CLI process, raw monitor)']!).mean / summarize(times['direct monitor socket']!).mean, unit: '×', extra: { target: '≤ 1.30' } },
        { name: 'second-monitor proxy / direct', value: summarize(times['libqemu proxy (second monitor)']!).mean / summarize(times['direct monitor socket']!).mean, unit: '×', extra: { target: '≤ 1.30' } },
        { name: 'passthrough proxy / virt-qemu-qmp-proxy', value: summarize(times['libqemu proxy (passthrough)']!).mean / summarize(times['virt-qemu-qmp-proxy (passthrough)']!).mean, unit: '×', extra: { target: '≤ 1.00' } },
      ],
      '',
    );

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
    const directOne = summarize(times['direct monitor socket']!);
    printTable(
      'query-status with ten clients at once (each sequential; latency per call, throughput over all)',
      [
        { name: 'direct monitor socket, 1 client (reference)', value: directOne.mean, unit: 'ms', extra: { 'calls/s': Math.round(1000 / directOne.mean), clients: 'QEMU serves 1 client per socket' } },
        { name: 'libqemu proxy (second monitor), 10 clients', value: tenMonitor.mean, unit: 'ms', extra: { 'calls/s': Math.round(tenMonitor.perSecond), clients: '10 served at once' } },
        { name: 'libqemu proxy (passthrough), 10 clients', value: tenPassthrough.mean, unit: 'ms', extra: { 'calls/s': Math.round(tenPassthrough.perSecond), clients: '10 served at once' } },
        { name: 'virt-qemu-qmp-proxy, 10 clients', value: NaN, unit: '', extra: { 'calls/s': '-', clients: `2nd client: ${secondVirt}` } },
      ],
      'direct monitor socket, 1 client (reference)',
    );
  } finally {
    for (const child of [cliProxy]) {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
    if (virtProxy && virtProxy.exitCode === null) {
      virtProxy.kill('SIGTERM');
      await new Promise((r) => virtProxy!.once('exit', r));
    }
    for (const p of proxies) await p.close();
    for (const c of clients) await c.close().catch(() => undefined);
    await hv?.close();
    await lv.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
