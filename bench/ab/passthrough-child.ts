/**
 * One side of bench/ab/passthrough.ts: loads libqemu from the tree given as argv[2], connects to argv[3],
 * and times query-status on guest argv[4] through argv[5]: 'qmp' = guest.qmp({ via: 'passthrough' }) ('qmpnv':
 * the same with validate: false, no schema check),
 * 'dom' = domain.qemuMonitorCommand(), and two floors with no per-call hand-off: 'raw' = the koffi call
 * looped in a worker while libqemu's libvirt event loop runs ('rawka': with keepalive on, as on libqemu's lanes), 'rawmain' = the koffi call looped on the main
 * thread of a process with no libvirt event loop (what plain python does); 'proxy' = a minimal QMP client
 * through an in-process QmpProxy on guest.qmp({ via: 'passthrough', validate: false }) (as bench/proxy.bench.ts
 * runs it), 'socket' = the same client on the QMP socket argv[4] (e.g. virt-qemu-qmp-proxy's). Prints '[]' once warmed up,
 * then one JSON array of per-call ms for every number of calls it reads on stdin.
 */
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { timeEach } from '../table.js';

type Mode = 'qmp' | 'qmpnv' | 'dom' | 'proxy' | 'socket' | 'raw' | 'rawka' | 'rawmain';
const [tree, uri, name, mode] = process.argv.slice(2) as [string, string, string, Mode];
const src = (p: string): string => pathToFileURL(join(tree, p)).href;

/** Runs `n` calls and returns each one's ms. */
type Round = (n: number) => Promise<number[]>;

function timed(call: () => Promise<unknown>): Round {
  return (n) => timeEach(n, call, 0);
}

async function rawWorker(keepAlive: boolean): Promise<Round> {
  const { spawnWorker } = (await import(src('src/libvirt/spawn-worker.ts'))) as typeof import('../../src/libvirt/spawn-worker.js');
  const worker = spawnWorker(new URL('../raw-libvirt-worker.ts', import.meta.url), { workerData: { uri, name, keepAlive } });
  let waiting: ((t: number[]) => void) | undefined;
  worker.on('message', (t: number[]) => waiting?.(t));
  const next = (): Promise<number[]> => new Promise((r) => (waiting = r));
  await next();
  return (n) => {
    const p = next();
    worker.postMessage({ op: 'qmp', n });
    return p;
  };
}

async function rawMain(): Promise<Round> {
  const { loadNative } = (await import(src('native/libvirt.ts'))) as typeof import('../../native/libvirt.js');
  const native = loadNative();
  const { api } = native;
  api.virSetErrorFunc(null, native.noopErrorHandler);
  const conn = api.virConnectOpen(uri);
  const dom = conn && api.virDomainLookupByName(conn, name);
  if (!dom) throw new Error(native.lastError()?.message ?? 'open failed');
  return async (n) => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const out: [never | null] = [null];
      if (api.virDomainQemuMonitorCommand(dom, '{"execute":"query-status"}', out, 0) < 0) throw new Error(native.lastError()?.message ?? 'failed');
      native.decodeString(out[0]!);
      api.free(out[0]);
      times.push(performance.now() - t0);
    }
    return times;
  };
}

let round: Round;
let close = async (): Promise<void> => {};
if (mode === 'rawmain') {
  round = await rawMain();
} else if (mode === 'socket') {
  const { RawQmpClient } = await import('../raw-qmp-client.js');
  const c = await RawQmpClient.open(name);
  round = timed(() => c.call('query-status'));
  close = async () => c.close();
} else {
  const { Hypervisor } = (await import(src('src/hybrid/index.ts'))) as typeof import('../../src/hybrid/index.js');
  const hv = await Hypervisor.connect(uri, { onTaint: () => {} });
  close = () => hv.close();
  if (mode === 'raw' || mode === 'rawka') round = await rawWorker(mode === 'rawka');
  else if (mode === 'dom') {
    const dom = await hv.connection.lookupDomain(name);
    round = timed(() => dom.qemuMonitorCommand('{"execute":"query-status"}'));
  } else if (mode === 'proxy') {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { QmpProxy } = (await import(src('src/proxy/index.ts'))) as typeof import('../../src/proxy/index.js');
    const { RawQmpClient } = await import('../raw-qmp-client.js');
    const backend = await (await hv.guest(name)).qmp({ via: 'passthrough', validate: false, timeoutMs: 0 });
    const proxy = await QmpProxy.start(backend, { listen: join(mkdtempSync(join(tmpdir(), 'abpx-')), 'p.sock') });
    const c = await RawQmpClient.open(proxy.path);
    round = timed(() => c.call('query-status'));
    close = async () => {
      c.close();
      await proxy.close();
      await backend.close();
      await hv.close();
    };
  } else {
    const client = await (await hv.guest(name)).qmp({ via: 'passthrough', validate: mode !== 'qmpnv' });
    round = timed(() => client.execute('query-status'));
    close = async () => {
      await client.close();
      await hv.close();
    };
  }
}
await round(100);
console.log('[]');
for await (const line of createInterface({ input: process.stdin })) {
  const n = Number(line);
  if (!(n > 0)) break;
  console.log(JSON.stringify(await round(n)));
}
await close();
process.exit(0);
