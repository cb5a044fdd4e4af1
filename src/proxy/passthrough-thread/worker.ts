/**
 * The passthrough proxy's thread: the whole proxy (clients' sockets, their QMP sessions, the ownership
 * policy, the QMP client) runs here, and each command is a blocking libvirt call made on this thread,
 * on a connection reserved for it. A call then costs one wake-up of one thread, as in libvirt's own
 * virt-qemu-qmp-proxy, instead of a hand-off to a lane's thread and back. The main thread forwards the
 * guest's QEMU events, replaces the connection when it is lost, and enforces call deadlines by shutting
 * a stuck call's socket down (this thread cannot be interrupted inside libvirt).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { PolicyError } from '../../hybrid/errors.js';
import { importNativeModules } from '../../libvirt/protocol.js';
import { loadThreadCalls } from '../../libvirt/thread-calls.js';
import { GuestQmpClient } from '../../hybrid/guest-client.js';
import { OwnershipPolicy } from '../../hybrid/policy.js';
import type { RefusalText } from '../errors.js';
import type { QmpProxy as QmpProxyType } from '../server.js';
import { STAT_ACCEPTED, STAT_CLIENTS, STAT_COMMANDS, STAT_DROPPED, STAT_EVENTS, type FromThread, type ThreadInit, type ToThread } from './protocol.js';
import { ThreadTarget } from './thread-target.js';

const init = workerData as ThreadInit;
const port = parentPort as unknown as MessagePort;
const gate = new Int32Array(init.gate);
const shared = new Int32Array(init.shared);
const post = (m: FromThread): void => port.postMessage(m);

// Modules without koffi are loaded above, outside the exit gate; these load koffi, counted in it.
const calls = await loadThreadCalls(gate);
const native = calls && (await importNativeModules(gate, () => Promise.all([import('../../hybrid/passthrough-transport.js'), import('../server.js')])));
if (calls === undefined || native === undefined) process.exit(0); // the process is exiting
const [{ PassthroughTransport }, { QmpProxy }] = native;

const log = (level: 'debug' | 'info' | 'warn') => (message: string, details?: Record<string, unknown>) => post({ k: 'log', level, message, ...(details ? { details } : {}) });
let target: ThreadTarget | undefined;
let proxy: QmpProxyType | undefined;
let statsTimer: NodeJS.Timeout | undefined;

function publishStats(): void {
  if (!proxy) return;
  const s = proxy.stats;
  Atomics.store(shared, STAT_CLIENTS, s.clients);
  Atomics.store(shared, STAT_ACCEPTED, s.accepted);
  Atomics.store(shared, STAT_DROPPED, s.dropped);
  Atomics.store(shared, STAT_COMMANDS, s.commands);
  Atomics.store(shared, STAT_EVENTS, s.events);
}

port.on('message', (m: ToThread) => {
  switch (m.k) {
    case 'event':
      target?.events.push({ domain: { name: init.guest, uuid: init.uuid }, event: m.event, data: m.data as Record<string, unknown> | undefined, timestamp: { seconds: m.seconds, microseconds: m.microseconds } });
      break;
    case 'lane':
      target?.useConnection(m.conn);
      break;
    case 'lost':
      target?.lost();
      break;
    case 'close':
      void stop(m.reason);
      break;
  }
});

let stopping: Promise<void> | undefined;
function stop(reason: string): Promise<void> {
  stopping ??= (async () => {
    try {
      await proxy?.close(reason);
    } finally {
      if (statsTimer) clearInterval(statsTimer);
      publishStats();
      target?.close();
      post({ k: 'done', reason });
      port.close();
    }
  })();
  return stopping;
}

try {
  target = new ThreadTarget(calls, init.conn, init.uuid, init.guest, init.uri, shared, init.proxy.commandTimeoutMs ?? 0, () => post({ k: 'need-lane' }));
  const describeRefusal = init.refusal ? await loadRefusal(init.refusal) : undefined;
  const client = new GuestQmpClient(new PassthroughTransport(target, init.events ? { events: init.events } : {}), {
    guest: init.guest,
    route: 'passthrough',
    policy: new OwnershipPolicy(init.allow === undefined ? {} : { allow: init.allow }),
    validate: init.validate,
    timeoutMs: 0, // the proxy's commandTimeoutMs applies per command; the watchdog ends a stuck libvirt call
  });
  await client.open();
  proxy = await QmpProxy.start(client, {
    listen: init.listen,
    ...init.proxy,
    logger: { info: log('info'), warn: log('warn'), ...(init.debug ? { debug: log('debug') } : {}) },
    ...(describeRefusal ? { describeRefusal } : {}),
  });
  statsTimer = setInterval(publishStats, 100);
  statsTimer.unref();
  void proxy.done.then(async (reason: string) => {
    await client.close().catch(() => undefined);
    await stop(reason);
  });
  post({ k: 'ready', path: proxy.path, greeting: proxy.greeting });
} catch (err) {
  target?.close();
  const e = err instanceof Error ? err : new Error(String(err));
  post({ k: 'failed', error: { name: e.name, message: e.message, hint: (e as { hint?: unknown }).hint } });
  port.close();
}

async function loadRefusal(refusal: { module: string; context: unknown }): Promise<(err: PolicyError) => RefusalText> {
  const mod = (await import(refusal.module)) as { describeRefusal?: (err: PolicyError, context: unknown) => RefusalText };
  if (typeof mod.describeRefusal !== 'function') throw new Error(`${refusal.module} exports no describeRefusal(err, context)`);
  return (err) => mod.describeRefusal!(err, refusal.context);
}
