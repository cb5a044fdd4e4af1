/** Messages between the main thread and the libvirt worker threads (envelope fields kept apart from arguments). */
import type { LibvirtErrorData } from './errors.js';

export interface ExecRequest {
  id: number;
  op: string;
  args: unknown[];
}

export type ExecReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: LibvirtErrorData };

/** Int32 slots of the shared exit gate: CLOSING is set by the exit hook; ACTIVE counts threads inside koffi. */
export const GATE_CLOSING = 0;
export const GATE_ACTIVE = 1;

/** Int32 slots of an executor's control block: SEQ is bumped after each posted request; STOP ends the thread. */
export const CTL_SEQ = 0;
export const CTL_STOP = 1;

export type EventCommand =
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
