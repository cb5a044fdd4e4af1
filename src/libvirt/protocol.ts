/** Messages between the main thread and the libvirt worker threads (envelope fields kept apart from arguments). */
import type { LibvirtErrorData } from './errors.js';

export interface ExecRequest {
  id: number;
  op: string;
  args: unknown[];
}

export type ExecReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: LibvirtErrorData };

/**
 * Int32 slots of the shared exit gate: CLOSING is set by the exit hook; ACTIVE counts threads inside koffi;
 * LOADING counts worker threads loading koffi and libvirt (Node tearing a thread down while koffi
 * initialises aborts the whole process, so the exit hook waits for them).
 */
export const GATE_CLOSING = 0;
export const GATE_ACTIVE = 1;
export const GATE_LOADING = 2;
export const GATE_SLOTS = 3;

/**
 * Int32 slots of an executor's control block: SEQ is bumped after each posted request; STOP ends the
 * thread; ACTIVE counts native calls in flight on the executor's libvirt connection (its own and event
 * registrations made for it from the event worker), MAX the most ever seen at once (a test hook: libvirt
 * 9.0 must never see two).
 */
export const CTL_SEQ = 0;
export const CTL_STOP = 1;
export const CTL_ACTIVE = 2;
export const CTL_MAX = 3;
export const CTL_SLOTS = 4;

/**
 * Imports a worker's koffi-using modules, counted in GATE_LOADING. Resolves undefined, loading nothing,
 * once the process is exiting. Counted in before CLOSING is read, so the exit hook (which sets CLOSING
 * first, then waits for LOADING to drain) either sees this load or this load sees CLOSING.
 */
export async function importNativeModules<T>(gate: Int32Array, load: () => Promise<T>): Promise<T | undefined> {
  Atomics.add(gate, GATE_LOADING, 1);
  try {
    if (Atomics.load(gate, GATE_CLOSING)) return undefined;
    return await load();
  } finally {
    Atomics.sub(gate, GATE_LOADING, 1);
    Atomics.notify(gate, GATE_LOADING);
  }
}

/**
 * Counts a thread into koffi in the exit gate (GATE_ACTIVE): false when the process is exiting, and the
 * thread must then start nothing. Counted in before CLOSING is read (the exit hook sets CLOSING, then
 * waits for ACTIVE to drain). Always pair with leaveGate(), whatever enterGate() returned.
 */
export function enterGate(gate: Int32Array): boolean {
  Atomics.add(gate, GATE_ACTIVE, 1);
  return Atomics.load(gate, GATE_CLOSING) === 0;
}

export function leaveGate(gate: Int32Array): void {
  Atomics.sub(gate, GATE_ACTIVE, 1);
  Atomics.notify(gate, GATE_ACTIVE);
}

/** Counts a native call on a connection in (see CTL_ACTIVE). */
export function enterNative(ctl: Int32Array): void {
  const n = Atomics.add(ctl, CTL_ACTIVE, 1) + 1;
  for (let max = Atomics.load(ctl, CTL_MAX); n > max; max = Atomics.load(ctl, CTL_MAX)) {
    if (Atomics.compareExchange(ctl, CTL_MAX, max, n) === max) break;
  }
}

export function leaveNative(ctl: Int32Array): void {
  Atomics.sub(ctl, CTL_ACTIVE, 1);
}

export type EventCommand = EventCommandBody & {
  /** The control block of the executor whose connection this RPC uses (see CTL_ACTIVE). */
  probe?: SharedArrayBuffer;
};

type EventCommandBody =
  | { cmd: 'register'; reqId: number; conn: bigint; kind: 'lifecycle' | 'reboot' | 'migration-iteration' | 'job-completed'; dom: bigint | null; sub: number }
  | { cmd: 'registerQemu'; reqId: number; conn: bigint; dom: bigint | null; event: string | null; flags: number; sub: number }
  | { cmd: 'registerObject'; reqId: number; conn: bigint; family: EventFamily; obj: bigint | null; eventId: number; sub: number }
  | { cmd: 'deregister'; reqId: number; conn: bigint; kind: 'domain' | 'qemu' | 'object'; family?: EventFamily; callbackId: number };

/** The libvirt object families with event registrations (virConnect<Family>EventRegisterAny). */
export type EventFamily = 'domain' | 'network' | 'storagePool' | 'nodeDevice' | 'secret';

export type EventMessage =
  | { k: 'ready'; loop: bigint; closeCallback: bigint }
  | { k: 'reply'; reqId: number; ok: true; value: number }
  | { k: 'reply'; reqId: number; ok: false; error: LibvirtErrorData }
  | { k: 'lifecycle'; sub: number; name: string; uuid: string; event: number; detail: number }
  | { k: 'reboot'; sub: number; name: string; uuid: string }
  | { k: 'migration-iteration'; sub: number; name: string; uuid: string; iteration: number }
  | { k: 'job-completed'; sub: number; name: string; uuid: string; stats: Record<string, number | bigint | boolean | string> }
  | { k: 'qemu'; sub: number; name: string; uuid: string; event: string; seconds: number; micros: number; details: string | null }
  | { k: 'generic'; sub: number; family: EventFamily; eventId: number; event: Record<string, unknown> }
  | { k: 'closed'; connId: number; reason: number };
