/**
 * Diagnostic baseline for the per-call benchmarks: a worker thread that opens its own libvirt connection
 * through native/ and runs `n` calls back to back per request (virDomainQemuMonitorCommand for 'qmp',
 * virDomainGetXMLDesc for 'xml'), timing each. It is libqemu's executor minus the per-call hand-off with
 * the main thread, so the benchmark can split the gap to python3-libvirt into "koffi + libvirt in a
 * worker" and "the two thread wake-ups per call".
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { loadNative, type MallocPtr } from '../native/libvirt.js';

const { uri, name } = workerData as { uri: string; name: string };
const port = parentPort as unknown as MessagePort;
const native = loadNative();
const { api } = native;
api.virSetErrorFunc(null, native.noopErrorHandler);
const conn = api.virConnectOpen(uri);
if (!conn) throw new Error(`virConnectOpen(${uri}) failed: ${native.lastError()?.message}`);
// keepAlive: as libqemu's lanes have it (libvirt then re-arms its keepalive timer on the event loop as messages arrive).
if ((workerData as { keepAlive?: boolean }).keepAlive && api.virConnectSetKeepAlive(conn, 5, 3) < 0) throw new Error(`virConnectSetKeepAlive failed: ${native.lastError()?.message}`);
const dom = api.virDomainLookupByName(conn, name);
if (!dom) throw new Error(`virDomainLookupByName(${name}) failed: ${native.lastError()?.message}`);
const command = '{"execute":"query-status"}';
// koffi frees the returned string ('!'), as the generated binding does.
const getXMLDesc = native.bind(0, 'char *! virDomainGetXMLDesc(void *domain, unsigned int flags)') as (d: unknown, flags: number) => string | null;

const calls = {
  qmp(): void {
    const out: [MallocPtr | null] = [null];
    if (api.virDomainQemuMonitorCommand(dom!, command, out, 0) < 0) throw new Error(native.lastError()?.message ?? 'virDomainQemuMonitorCommand failed');
    native.decodeString(out[0]!);
    api.free(out[0]);
  },
  xml(): void {
    if (getXMLDesc(dom, 0) === null) throw new Error(native.lastError()?.message ?? 'virDomainGetXMLDesc failed');
  },
};

port.on('message', ({ op, n }: { op: keyof typeof calls; n: number }) => {
  if (n === 0) {
    api.virDomainFree(dom);
    api.virConnectClose(conn);
    port.postMessage([]);
    port.close();
    return;
  }
  const call = calls[op];
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    call();
    times.push(performance.now() - t0);
  }
  port.postMessage(times);
});
port.postMessage([]);
