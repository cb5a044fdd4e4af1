/** Messages between a PassthroughProxy (main thread) and its thread (worker.ts). */
import type { QmpGreeting } from '../../qmp/client.js';

/** What the thread is started with (workerData). */
export interface ThreadInit {
  /** The runtime's shared exit gate (see src/libvirt/protocol.ts). */
  gate: SharedArrayBuffer;
  /** Int32 slots the thread fills in (STAT_*), and the watchdog's (WATCH_*). */
  shared: SharedArrayBuffer;
  /** The reserved libvirt connection. */
  conn: bigint;
  uuid: string;
  guest: string;
  uri: string;
  listen: string;
  allow: readonly string[] | 'all' | undefined;
  validate: boolean;
  events: readonly string[] | undefined;
  proxy: {
    maxClients?: number;
    maxClientOutputBytes?: number;
    maxPendingPerClient?: number;
    maxMessageBytes?: number;
    commandTimeoutMs?: number;
    fdPassing?: boolean;
  };
  /** An ES module whose `describeRefusal(err, context)` words policy refusals, and its context. */
  refusal: { module: string; context: unknown } | undefined;
  /** Whether the main thread wants debug log lines (each one crosses threads). */
  debug: boolean;
}

/** Int32 slots of `shared`: the proxy's counters, refreshed by the thread. */
export const STAT_CLIENTS = 0;
export const STAT_ACCEPTED = 1;
export const STAT_DROPPED = 2;
export const STAT_COMMANDS = 3;
export const STAT_EVENTS = 4;
/** The watchdog: IN_CALL is 1 while a libvirt call runs; CALL_SEQ counts calls; TIMED_OUT is set by the main thread. */
export const WATCH_IN_CALL = 5;
export const WATCH_CALL_SEQ = 6;
export const WATCH_TIMED_OUT = 7;
export const SHARED_SLOTS = 8;

export type ToThread =
  | { k: 'event'; event: string; data: unknown; seconds: number; microseconds: number }
  | { k: 'lane'; conn: bigint }
  | { k: 'lost'; message: string }
  | { k: 'close'; reason: string };

export type FromThread =
  | { k: 'ready'; path: string; greeting: QmpGreeting }
  | { k: 'failed'; error: { name: string; message: string; hint: unknown } }
  | { k: 'log'; level: 'debug' | 'info' | 'warn'; message: string; details?: Record<string, unknown> }
  /** The thread freed what it held on its connection (lost, or timed out) and needs another. */
  | { k: 'need-lane' }
  | { k: 'done'; reason: string };
