/**
 * The libvirt event loop, in its own worker thread, in "pump" mode: one virEventRunDefaultImpl()
 * iteration, then setImmediate() back to Node. Yielding matters: libvirt may fire a callback on another
 * thread (the close callback, from whichever RPC notices the disconnect); koffi queues such calls to this
 * thread's Node loop, so a loop that never yields would deadlock. Every callback is registered here and
 * posts plain data to the main thread. A 200 ms heartbeat bounds each iteration; the main thread wakes
 * the loop at once with virEventAddTimeout(0, wake) after posting a command.
 */
import { workerData, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { loadNative, type CallbackPtr, type ConnectPtr, type DomainPtr, type TypedParamsPtr } from '../../native/libvirt.js';
import type { LibvirtErrorData } from './errors.js';
import { decodeTypedParams, typedParamsToObject } from './typed-params.js';
import { EV_ITERATIONS, EV_LEFT, EV_STOP, type EventCommand, type EventMessage } from './protocol.js';

const { port, flags: flagsBuffer } = workerData as { port: MessagePort; flags: SharedArrayBuffer };
const flags = new Int32Array(flagsBuffer);
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

const wake = native.register((timer: number) => {
  api.virEventRemoveTimeout(timer);
}, 'virEventTimeoutCallback');
const heartbeat = native.register(() => {}, 'virEventTimeoutCallback');

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
    case 'closeCallback':
      operation = c.register ? 'virConnectRegisterCloseCallback' : 'virConnectUnregisterCloseCallback';
      // No free callback (NULL): libvirt could call it on whichever thread deregisters.
      rc = c.register ? api.virConnectRegisterCloseCallback(conn, closeCb, BigInt(c.connId), null) : api.virConnectUnregisterCloseCallback(conn, closeCb);
      break;
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

api.virEventAddTimeout(200, heartbeat, null, null);
post({ k: 'ready', wake: wake as CallbackPtr });

function step(): void {
  if (Atomics.load(flags, EV_STOP)) {
    Atomics.store(flags, EV_LEFT, 1);
    Atomics.notify(flags, EV_LEFT);
    port.close();
    return;
  }
  let m: { message: unknown } | undefined;
  while ((m = receiveMessageOnPort(port))) run(m.message as EventCommand);
  api.virEventRunDefaultImpl();
  Atomics.add(flags, EV_ITERATIONS, 1);
  setImmediate(step);
}
step();
