/**
 * The libvirt event worker's body (loaded by event-worker.ts): owns every libvirt callback and runs the
 * event registrations.
 *
 * libvirt's default event implementation runs on GLib's default main context; a native thread started
 * here (g_thread_new → g_main_loop_run, no JavaScript on it) runs that loop, exactly as a C or Python
 * program's event-loop thread does. An RPC wakes the loop 3–4 times (libvirt switches the socket's watch
 * off and on around each call): in a native thread those wake-ups cost what they cost python3-libvirt,
 * where a loop pumped from this worker's JavaScript cost a Node turn each (the passthrough benchmark).
 *
 * koffi relays a callback invoked on any other thread (the loop thread; an executor thread noticing a
 * dead connection fires the close callback) to this thread's Node loop and blocks the caller until it
 * returns. So this thread must stay free: it runs only registrations (short RPCs that never wait for the
 * loop thread) and callbacks, which post plain data to the main thread.
 */
import { virErrorDomain, virErrorNumber } from '../generated/libvirt/enums.js';
import { workerData, type MessagePort } from 'node:worker_threads';
import { loadNative, type ConnectPtr, type DomainPtr, type TypedParamsPtr } from '../../native/libvirt.js';
import type { LibvirtErrorData } from './errors.js';
import { decodeTypedParams, typedParamsToObject } from './typed-params.js';
import { enterNative, leaveNative, type EventCommand, type EventFamily, type EventMessage } from './protocol.js';
import { EVENT_CALLBACKS } from '../generated/libvirt/functions.js';
import { objectRef } from './interpreter.js';

const { port } = workerData as { port: MessagePort };
const native = loadNative();
const { api } = native;
api.virSetErrorFunc(null, native.noopErrorHandler);

// Before any virConnectOpen in the process: connections opened earlier never get their socket watched.
if (api.virEventRegisterDefaultImpl() < 0) throw new Error('virEventRegisterDefaultImpl failed');

const post = (m: EventMessage): void => port.postMessage(m);

function domainIdentity(dom: DomainPtr): { name: string; uuid: string } {
  const buf = Buffer.alloc(37);
  const ok = api.virDomainGetUUIDString(dom, buf) >= 0;
  return { name: api.virDomainGetName(dom) ?? '', uuid: ok ? buf.toString('latin1', 0, 36) : '' };
}

const lifecycleCb = native.register((_c: ConnectPtr, dom: DomainPtr, event: number, detail: number, opaque: bigint) => {
  post({ k: 'lifecycle', sub: Number(opaque), ...domainIdentity(dom), event, detail });
  return 0;
}, 'virConnectDomainEventCallback');
const rebootCb = native.register((_c: ConnectPtr, dom: DomainPtr, opaque: bigint) => {
  post({ k: 'reboot', sub: Number(opaque), ...domainIdentity(dom) });
}, 'virConnectDomainEventGenericCallback');
const qemuCb = native.register(
  (_c: ConnectPtr, dom: DomainPtr, event: string, seconds: number | bigint, micros: number, details: string | null, opaque: bigint) => {
    post({ k: 'qemu', sub: Number(opaque), ...domainIdentity(dom), event, seconds: Number(seconds), micros, details });
  },
  'virConnectDomainQemuMonitorEventCallback',
);
const migrationIterationCb = native.register((_c: ConnectPtr, dom: DomainPtr, iteration: number, opaque: bigint) => {
  post({ k: 'migration-iteration', sub: Number(opaque), ...domainIdentity(dom), iteration });
}, 'virConnectDomainEventMigrationIterationCallback');
// libvirt frees the statistics when the callback returns: copy them out here, synchronously.
const jobCompletedCb = native.register((_c: ConnectPtr, dom: DomainPtr, params: TypedParamsPtr | null, nparams: number, opaque: bigint) => {
  post({ k: 'job-completed', sub: Number(opaque), ...domainIdentity(dom), stats: typedParamsToObject(decodeTypedParams(native, params, nparams)) });
}, 'virConnectDomainEventJobCompletedCallback');
/** virDomainEventID and callback per domain event kind. */
const domainEventKinds = {
  lifecycle: [0, lifecycleCb],
  reboot: [1, rebootCb],
  'migration-iteration': [20, migrationIterationCb],
  'job-completed': [21, jobCompletedCb],
} as const;
// Registered and unregistered by each connection's executor (ops.ts), not here: libvirt calls it holding
// the connection's close-callback lock, and koffi relays the call to this thread, so this thread must
// never be the one waiting for that lock (virConnectUnregisterCloseCallback) at the same time.
const closeCb = native.register((_c: ConnectPtr, reason: number, opaque: bigint) => {
  post({ k: 'closed', connId: Number(opaque), reason });
}, 'virConnectCloseFunc');

/** virConnect<Family>EventRegisterAny / DeregisterAny: one shape for every object family. */
const REGISTRARS: Record<EventFamily, string> = {
  domain: 'Domain',
  network: 'Network',
  storagePool: 'StoragePool',
  nodeDevice: 'NodeDevice',
  secret: 'Secret',
};
const registerAny = (family: EventFamily): ((...a: unknown[]) => number) =>
  native.bind(0, `int virConnect${REGISTRARS[family]}EventRegisterAny(void *conn, void *obj, int eventID, void *cb, void *opaque, void *freecb)`) as (...a: unknown[]) => number;
const deregisterAny = (family: EventFamily): ((...a: unknown[]) => number) =>
  native.bind(0, `int virConnect${REGISTRARS[family]}EventDeregisterAny(void *conn, int callbackID)`) as (...a: unknown[]) => number;

native.struct('lqGraphicsAddress', ['family:int', 'node:const char *', 'service:const char *']);
native.struct('lqGraphicsSubject', ['nidentity:int', 'identities:void *']);
native.struct('lqGraphicsIdentity', ['type:const char *', 'name:const char *']);

/** Decodes one callback's arguments as the generated table says; libvirt owns them only during the call. */
function decodeEvent(kinds: readonly string[], args: unknown[]): { sub: number; event: Record<string, unknown> } {
  const event: Record<string, unknown> = {};
  let sub = 0;
  kinds.forEach((k, i) => {
    const [kind, a, b] = k.split(':') as [string, string | undefined, string | undefined];
    const v = args[i];
    switch (kind) {
      case 'skip':
        break;
      case 'opaque':
        sub = Number(v);
        break;
      case 'obj': {
        const { ptr: _ptr, ...identity } = objectRef(native, a!, v as bigint);
        event[b!] = identity;
        break;
      }
      case 'num':
        event[a!] = typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
        break;
      case 'str':
        event[a!] = v;
        break;
      case 'tp':
        event[a!] = typedParamsToObject(decodeTypedParams(native, v as TypedParamsPtr | null, Number(args[i + 1])));
        break;
      case 'gaddr':
        event[a!] = v ? native.decodeStruct(v as bigint, 'lqGraphicsAddress') : null;
        break;
      case 'gsubj': {
        if (!v) {
          event[a!] = null;
          break;
        }
        const subj = native.decodeStruct(v as bigint, 'lqGraphicsSubject') as { nidentity: number; identities: bigint | null };
        const list = subj.nidentity > 0 && subj.identities ? native.decodeStruct(subj.identities, 'lqGraphicsIdentity', subj.nidentity) : [];
        event[a!] = { identities: list };
        break;
      }
    }
  });
  return { sub, event };
}

/** One C callback per family and event id, made on first use. */
const genericCallbacks = new Map<string, bigint>();
function genericCallback(family: EventFamily, eventId: number): bigint {
  const key = `${family}:${eventId}`;
  let cb = genericCallbacks.get(key);
  if (cb === undefined) {
    const spec = EVENT_CALLBACKS[key];
    if (!spec) throw new Error(`libvirt 9.0 has no ${family} event ${eventId}`);
    cb = native.callback(spec.proto, (...args: unknown[]) => {
      const { sub, event } = decodeEvent(spec.args, args);
      post({ k: 'generic', sub, family, eventId, event });
      return 0;
    });
    genericCallbacks.set(key, cb);
  }
  return cb;
}

function failure(operation: string): LibvirtErrorData {
  const e = native.lastError();
  return e ? { code: e.code, domain: e.domain, message: e.message ?? 'unknown libvirt error', operation } : { code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_NONE, message: 'failed without an error', operation };
}

function run(c: EventCommand): void {
  const probe = c.probe ? new Int32Array(c.probe) : undefined;
  let reply: EventMessage;
  if (probe) enterNative(probe);
  try {
    reply = runNative(c);
  } finally {
    if (probe) leaveNative(probe);
  }
  // Only once the call is counted out: the reply lets the main thread start the next call on this connection.
  post(reply);
}

function runNative(c: EventCommand): EventMessage {
  const conn = c.conn as ConnectPtr;
  let rc: number;
  let operation: string;
  switch (c.cmd) {
    case 'register':
      operation = 'virConnectDomainEventRegisterAny';
      rc = api.virConnectDomainEventRegisterAny(conn, c.dom as DomainPtr | null, domainEventKinds[c.kind][0], domainEventKinds[c.kind][1], BigInt(c.sub), null);
      break;
    case 'registerQemu':
      operation = 'virConnectDomainQemuMonitorEventRegister';
      rc = api.virConnectDomainQemuMonitorEventRegister(conn, c.dom as DomainPtr | null, c.event, qemuCb, BigInt(c.sub), null, c.flags);
      break;
    case 'registerObject':
      operation = `virConnect${REGISTRARS[c.family]}EventRegisterAny`;
      rc = registerAny(c.family)(conn, c.obj, c.eventId, genericCallback(c.family, c.eventId), BigInt(c.sub), null);
      break;
    case 'deregister':
      if (c.kind === 'object') {
        operation = `virConnect${REGISTRARS[c.family ?? 'domain']}EventDeregisterAny`;
        rc = deregisterAny(c.family ?? 'domain')(conn, c.callbackId);
      } else {
        operation = c.kind === 'domain' ? 'virConnectDomainEventDeregisterAny' : 'virConnectDomainQemuMonitorEventDeregister';
        rc = c.kind === 'domain' ? api.virConnectDomainEventDeregisterAny(conn, c.callbackId) : api.virConnectDomainQemuMonitorEventDeregister(conn, c.callbackId);
      }
      break;
  }
  return rc < 0 ? { k: 'reply', reqId: c.reqId, ok: false, error: failure(operation) } : { k: 'reply', reqId: c.reqId, ok: true, value: rc };
}

port.on('message', (c: EventCommand) => run(c));

// The loop thread lives as long as the process; the main thread's exit hook quits it (runtime.ts).
const loop = api.g_main_loop_new(null, 0);
if (!api.g_thread_new('libvirt-events', native.mainLoopRun, loop)) throw new Error('g_thread_new failed');
post({ k: 'ready', loop, closeCallback: closeCb });
