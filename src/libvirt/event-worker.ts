/**
 * The libvirt event worker: owns every libvirt callback and runs the event registrations.
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
import { workerData, type MessagePort } from 'node:worker_threads';
import { loadNative, type ConnectPtr, type DomainPtr, type TypedParamsPtr } from '../../native/libvirt.js';
import type { LibvirtErrorData } from './errors.js';
import { decodeTypedParams, typedParamsToObject } from './typed-params.js';
import type { EventCommand, EventMessage } from './protocol.js';

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
const agentLifecycleCb = native.register((_c: ConnectPtr, dom: DomainPtr, state: number, reason: number, opaque: bigint) => {
  post({ k: 'agent-lifecycle', sub: Number(opaque), ...domainIdentity(dom), state, reason });
}, 'virConnectDomainEventAgentLifecycleCallback');
/** virDomainEventID and callback per domain event kind. */
const domainEventKinds = {
  lifecycle: [0, lifecycleCb],
  reboot: [1, rebootCb],
  'migration-iteration': [20, migrationIterationCb],
  'job-completed': [21, jobCompletedCb],
  'agent-lifecycle': [18, agentLifecycleCb],
} as const;
// Registered and unregistered by each connection's executor (ops.ts), not here: libvirt calls it holding
// the connection's close-callback lock, and koffi relays the call to this thread, so this thread must
// never be the one waiting for that lock (virConnectUnregisterCloseCallback) at the same time.
const closeCb = native.register((_c: ConnectPtr, reason: number, opaque: bigint) => {
  post({ k: 'closed', connId: Number(opaque), reason });
}, 'virConnectCloseFunc');

function failure(operation: string): LibvirtErrorData {
  const e = native.lastError();
  return e ? { code: e.code, domain: e.domain, message: e.message ?? 'unknown libvirt error', operation } : { code: 1, domain: 0, message: 'failed without an error', operation };
}

function run(c: EventCommand): void {
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
    case 'deregister':
      operation = c.kind === 'domain' ? 'virConnectDomainEventDeregisterAny' : 'virConnectDomainQemuMonitorEventDeregister';
      rc = c.kind === 'domain' ? api.virConnectDomainEventDeregisterAny(conn, c.callbackId) : api.virConnectDomainQemuMonitorEventDeregister(conn, c.callbackId);
      break;
  }
  post(rc < 0 ? { k: 'reply', reqId: c.reqId, ok: false, error: failure(operation) } : { k: 'reply', reqId: c.reqId, ok: true, value: rc });
}

port.on('message', (c: EventCommand) => run(c));

// The loop thread lives as long as the process; the main thread's exit hook quits it (runtime.ts).
const loop = api.g_main_loop_new(null, 0);
if (!api.g_thread_new('libvirt-events', native.mainLoopRun, loop)) throw new Error('g_thread_new failed');
post({ k: 'ready', loop, closeCallback: closeCb });
