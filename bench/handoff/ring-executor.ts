/*
 * Benchmark-only: the shared-memory alternative to src/libvirt/executor.ts, kept so that
 * bench/handoff.bench.ts can measure it side by side with the shipped postMessage hand-off (see
 * docs/libvirt-handoff.md for the figures and why the library does not use it). Not part of the library.
 */
/**
 * Main-thread side of one executor worker: writes calls in order into the shared request ring (the worker
 * runs them one at a time), settles each from the reply ring, and enforces a per-call deadline that starts
 * when the call reaches the front of the queue (i.e. when the worker starts it), not when it was submitted.
 *
 * The main thread never blocks on the worker: it learns about replies from an Atomics.waitAsync on the
 * reply counter, armed only while calls are in flight. A pending waitAsync does not keep Node's event loop
 * alive, so the worker handle is ref'd exactly while calls are pending: an idle executor lets the process
 * exit, a call in flight holds it.
 */
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { LibvirtError, LibvirtTimeoutError, type LibvirtErrorData } from '../../src/libvirt/errors.js';
import { decode, Encoder } from './codec.js';
import { ByteRing, Next } from './byte-ring.js';
import type { ExecOps, OpName } from '../../src/libvirt/ops.js';
import {
  CTL_READY,
  CTL_REPLY_READ,
  CTL_REPLY_SEQ,
  CTL_REPLY_WRITE,
  CTL_REQ_READ,
  CTL_REQ_WRITE,
  CTL_SEQ,
  CTL_STOP,
  EXEC_CTL_BYTES,
  EXEC_REPLY_RING_BYTES,
  EXEC_REQUEST_RING_BYTES,
} from './layout.js';
import { type ExecReply, type ExecRequest } from '../../src/libvirt/protocol.js';
import { extname, runtime } from '../../src/libvirt/runtime.js';
import { spawnWorker } from '../../src/libvirt/spawn-worker.js';

/** Atomics.waitAsync: ES2024, in Node 20, but not in the ES2023 library TypeScript is set to here. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, index: number, value: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
  }
).waitAsync;

class Call {
  settled = false;
  constructor(
    readonly id: number,
    readonly op: string,
    /** Dropped once written to the worker. */
    public args: unknown[] | undefined,
    readonly timeoutMs: number,
    readonly resolve: (v: unknown) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

export interface CallOptions {
  /** Deadline once the call has started; 0 = none. */
  timeoutMs?: number;
}

export class RingExecutor {
  private seq = 0;
  /** Written to the request ring and not yet answered, in order: [0] is the one running. */
  private readonly inFlight: Call[] = [];
  /** Not yet written because the request ring was full; written, in order, as replies free it. */
  private backlog: Call[] = [];
  /** Held back while an exclusive section (an event registration RPC) runs on the same connection. */
  private held: Call[] = [];
  private exclusiveDepth = 0;
  private idleWaiters: (() => void)[] = [];
  private dead: unknown;
  private headSince = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly requests: ByteRing;
  private readonly replies: ByteRing;
  private readonly encoder = new Encoder();
  /** Decoded reply values, reused: [ok, value or error]. */
  private readonly reply: unknown[] = [undefined, undefined];
  /** The reply counter as of the last time the reply ring was read. */
  private replySeq = 0;
  /** An Atomics.waitAsync on the reply counter is pending. */
  private waiting = false;
  /** Called when a call missed its deadline (the owner shuts the connection's socket down). */
  onStuck: ((op: string) => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    shared: SharedArrayBuffer,
    private readonly ctl: Int32Array,
    private readonly port: MessagePort,
  ) {
    this.requests = new ByteRing(shared, ctl, CTL_REQ_WRITE, CTL_REQ_READ, EXEC_CTL_BYTES, EXEC_REQUEST_RING_BYTES);
    this.replies = new ByteRing(shared, ctl, CTL_REPLY_WRITE, CTL_REPLY_READ, EXEC_CTL_BYTES + EXEC_REQUEST_RING_BYTES, EXEC_REPLY_RING_BYTES);
    runtime.executorControls.add(ctl);
    worker.on('error', (err) => this.kill(err));
    worker.on('exit', (code) => this.kill(new Error(`libvirt executor thread exited (${code})`)));
    worker.unref(); // ref'd again only while calls are pending
  }

  static async create(): Promise<RingExecutor> {
    const shared = new SharedArrayBuffer(EXEC_CTL_BYTES + EXEC_REQUEST_RING_BYTES + EXEC_REPLY_RING_BYTES);
    const ctl = new Int32Array(shared, 0, EXEC_CTL_BYTES / 4);
    const { port1, port2 } = new MessageChannel();
    const worker = spawnWorker(new URL(`./ring-executor-worker${extname()}`, import.meta.url), {
      workerData: { gate: runtime.gate.buffer, shared, port: port2 },
      transferList: [port2],
      // The thread only copies small values across: a small young generation keeps its RSS flat.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    // The worker handle is still ref'd here, so the process waits for the thread to start.
    await new Promise<void>((resolve, reject) => {
      const onError = (err: unknown): void => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new Error(`libvirt executor thread exited (${code}) before it was ready`));
      };
      const cleanup = (): void => {
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('error', onError);
      worker.on('exit', onExit);
      const ready = (): void => {
        cleanup();
        resolve();
      };
      const w = waitAsync(ctl, CTL_READY, 0);
      if (w.async) void w.value.then(ready);
      else ready();
    });
    return new RingExecutor(worker, shared, ctl, port1);
  }

  get isDead(): boolean {
    return this.dead !== undefined;
  }

  get busy(): boolean {
    return this.inFlight.length > 0 || this.backlog.length > 0 || this.held.length > 0;
  }

  call<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, options: CallOptions = {}): Promise<ReturnType<ExecOps[K]>> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const call = new Call(++this.seq, op, args, options.timeoutMs ?? 0, resolve as (v: unknown) => void, reject);
      if (this.exclusiveDepth > 0) this.held.push(call);
      else this.post(call);
    });
  }

  /**
   * Runs `fn` while no executor call is in flight on this connection and holds new ones back: the event
   * worker's registration RPCs use the same connection, and libvirt 9.0 must see one RPC at a time.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.exclusiveDepth++;
    try {
      while (this.inFlight.length > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
      return await fn();
    } finally {
      this.exclusiveDepth--;
      if (this.exclusiveDepth === 0) {
        const held = this.held;
        this.held = [];
        for (const call of held) this.post(call);
      }
    }
  }

  private post(call: Call): void {
    if (this.dead !== undefined) {
      call.reject(this.dead);
      return;
    }
    if (this.inFlight.length === 0 && this.backlog.length === 0) this.worker.ref();
    let written: boolean;
    try {
      written = this.backlog.length === 0 && this.write(call);
    } catch (err) {
      // Arguments that cannot cross to the thread (as postMessage would refuse them).
      if (this.inFlight.length === 0 && this.backlog.length === 0) this.worker.unref();
      call.reject(err);
      return;
    }
    if (!written) {
      this.backlog.push(call);
      return; // the ring is full of calls in flight: their replies make room (see onWake)
    }
    this.started(call);
    this.waitForReplies();
  }

  /** Writes one request into the ring; false when there is no room now. */
  private write(call: Call): boolean {
    const length = this.encoder.encode(call.id, call.op, call.args);
    if (length <= this.requests.maxInline) return this.requests.tryWrite(this.encoder.buffer, length);
    // Too big for the ring (a large XML document, stream data): the message goes by the side port.
    if (!this.requests.hasRoom(0)) return false;
    this.port.postMessage({ id: call.id, op: call.op, args: call.args ?? [] } satisfies ExecRequest);
    return this.requests.tryWriteOnPort();
  }

  /** A call's request is in the ring: wake the worker. */
  private started(call: Call): void {
    call.args = undefined;
    this.inFlight.push(call);
    Atomics.add(this.ctl, CTL_SEQ, 1);
    Atomics.notify(this.ctl, CTL_SEQ);
    if (this.inFlight.length === 1) this.startHead();
  }

  /** Arms one Atomics.waitAsync on the reply counter (there is at most one). */
  private waitForReplies(): void {
    if (this.waiting) return;
    this.waiting = true;
    const w = waitAsync(this.ctl, CTL_REPLY_SEQ, this.replySeq);
    if (w.async) void w.value.then(this.onWake);
    else queueMicrotask(this.onWake); // the counter moved already
  }

  private readonly onWake = (): void => {
    this.waiting = false;
    if (this.dead !== undefined) return;
    // Read the counter first: every reply it counts is in the ring before it was bumped.
    this.replySeq = Atomics.load(this.ctl, CTL_REPLY_SEQ);
    this.takeReplies();
    while (this.backlog.length > 0 && this.dead === undefined) {
      const next = this.backlog[0]!;
      let written: boolean;
      try {
        written = this.write(next);
      } catch (err) {
        this.backlog.shift();
        next.reject(err);
        continue;
      }
      if (!written) break;
      this.backlog.shift();
      this.started(next);
    }
    if (this.inFlight.length > 0 && this.dead === undefined) this.waitForReplies();
  };

  private takeReplies(): void {
    for (let taken = 0; ; taken++) {
      const next = this.replies.next();
      if (next === Next.None) {
        // A worker that found the ring full waits for room (rare: only with many replies unread).
        if (taken > 0) Atomics.notify(this.ctl, CTL_REPLY_READ);
        return;
      }
      let id: number;
      const reply = this.reply;
      if (next === Next.OnPort) {
        const r = receiveMessageOnPort(this.port)!.message as ExecReply;
        id = r.id;
        reply[0] = r.ok;
        reply[1] = r.ok ? r.value : r.error;
      } else id = decode(this.replies.bytes, this.replies.start, this.replies.end, reply);
      this.replies.release();
      const ok = reply[0] as boolean;
      const value = reply[1];
      reply[0] = reply[1] = undefined;
      this.onReply(id, ok, value);
      if (this.dead !== undefined) return;
    }
  }

  /** The front call has just started in the worker. */
  private startHead(): void {
    this.headSince = performance.now();
    const head = this.inFlight[0];
    if (head && head.timeoutMs > 0 && !this.watchdog) this.armWatchdog(head.timeoutMs);
  }

  /** One timer per executor, re-armed lazily (not one setTimeout/clearTimeout pair per call). */
  private armWatchdog(ms: number): void {
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      const head = this.inFlight[0];
      if (!head || head.timeoutMs <= 0) return;
      const left = head.timeoutMs - (performance.now() - this.headSince);
      if (left > 0) {
        this.armWatchdog(left);
        return;
      }
      if (!head.settled) {
        head.settled = true;
        head.reject(new LibvirtTimeoutError(head.op, head.timeoutMs));
        this.onStuck?.(head.op);
      }
    }, Math.max(1, Math.ceil(ms)));
    this.watchdog.unref();
  }

  private onReply(id: number, ok: boolean, value: unknown): void {
    const call = this.inFlight.shift();
    if (!call || call.id !== id) {
      this.kill(new Error(`libvirt executor protocol error: reply ${id} for call ${call?.id}`));
      return;
    }
    if (!call.settled) {
      call.settled = true;
      if (ok) call.resolve(value);
      else call.reject(new LibvirtError(value as LibvirtErrorData));
    }
    if (this.inFlight.length > 0) this.startHead();
    else if (this.backlog.length === 0) {
      this.worker.unref();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private kill(err: unknown): void {
    if (this.dead !== undefined) return;
    this.dead = err;
    for (const c of this.inFlight.splice(0)) if (!c.settled) c.reject(err);
    for (const c of this.backlog.splice(0)) c.reject(err);
    if (this.watchdog) clearTimeout(this.watchdog);
    for (const c of this.held.splice(0)) c.reject(err);
    for (const w of this.idleWaiters.splice(0)) w();
    // Settle our own pending waitAsync: V8 would otherwise keep it, and this executor with it, for ever.
    if (this.waiting) Atomics.notify(this.ctl, CTL_REPLY_SEQ);
  }

  /** Stops the thread (after close()); pending calls are rejected. */
  async terminate(): Promise<void> {
    this.kill(LibvirtError.closed());
    runtime.executorControls.delete(this.ctl);
    Atomics.store(this.ctl, CTL_STOP, 1);
    Atomics.notify(this.ctl, CTL_SEQ);
    await new Promise<void>((resolve) => {
      if (this.worker.threadId === -1) resolve();
      else this.worker.once('exit', () => resolve());
    });
    this.port.close();
  }
}
