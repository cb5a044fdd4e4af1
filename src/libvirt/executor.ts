/**
 * Main-thread side of one executor worker: posts calls in order (the worker runs them one at a time),
 * settles each from the worker's reply, and enforces a per-call deadline that starts when the call reaches
 * the front of the queue (i.e. when the worker starts it), not when it was submitted.
 */
import type { Worker } from 'node:worker_threads';
import { LibvirtError, LibvirtTimeoutError } from './errors.js';
import type { ExecOps, OpName } from './ops.js';
import { CTL_MAX, CTL_SEQ, CTL_SLOTS, CTL_STOP, type ExecReply, type ExecRequest } from './protocol.js';
import { extname, runtime } from './runtime.js';
import { spawnWorker } from './spawn-worker.js';

interface Call {
  id: number;
  op: string;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

export interface CallOptions {
  /** Deadline once the call has started; 0 = none. */
  timeoutMs?: number;
}

export class Executor {
  private seq = 0;
  /** Posted to the worker and not yet answered, in order: [0] is the one running. */
  private readonly inFlight: Call[] = [];
  private dead: unknown;
  private headSince = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private watchdogDue = 0;
  private detached = false;
  /** Called when a call missed its deadline (the owner retires the lane and shuts its socket down). */
  onStuck: ((op: string) => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly ctl: Int32Array,
  ) {
    runtime.executorControls.add(ctl);
    worker.on('message', (r: ExecReply) => this.onReply(r));
    worker.on('error', (err) => this.kill(err));
    worker.on('exit', (code) => this.kill(new Error(`libvirt executor thread exited (${code})`)));
    worker.unref(); // after the listeners: ref'd again only while calls are pending
  }

  static async create(): Promise<Executor> {
    const ctl = new Int32Array(new SharedArrayBuffer(4 * CTL_SLOTS));
    // The thread loads koffi and libvirt itself, counted in the exit gate (see importNativeModules).
    const worker = spawnWorker(new URL(`./executor-worker${extname()}`, import.meta.url), {
      workerData: { gate: runtime.gate.buffer, ctl: ctl.buffer },
      // The thread only copies small values across: a small young generation keeps its RSS flat.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (r: ExecReply): void => {
        if (r.id !== 0) return;
        cleanup();
        resolve();
      };
      const onError = (err: unknown): void => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number): void => onError(new Error(`libvirt executor thread exited (${code}) before it was ready`));
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    return new Executor(worker, ctl);
  }

  /** The control block's buffer, for event registrations made on this executor's connection (see CTL_ACTIVE). */
  get probe(): SharedArrayBuffer {
    return this.ctl.buffer as SharedArrayBuffer;
  }

  /** Test hook: the most native calls ever in flight at once on this executor's connection. */
  get maxConcurrentNativeCalls(): number {
    return Atomics.load(this.ctl, CTL_MAX);
  }

  /**
   * The thread no longer keeps the process alive, even with a call in flight: a call stuck on a hung
   * guest must not block exit (the exit hook shuts its socket down).
   */
  detach(): void {
    this.detached = true;
    this.worker.unref();
  }

  get isDetached(): boolean {
    return this.detached;
  }

  get isDead(): boolean {
    return this.dead !== undefined;
  }

  get busy(): boolean {
    return this.inFlight.length > 0;
  }

  call<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, options: CallOptions = {}): Promise<ReturnType<ExecOps[K]>> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const call: Call = { id: ++this.seq, op, timeoutMs: options.timeoutMs ?? 0, resolve: resolve as (v: unknown) => void, reject, settled: false };
      this.post({ id: call.id, op, args }, call);
    });
  }

  private post(req: ExecRequest, call: Call): void {
    if (this.dead !== undefined) {
      call.reject(this.dead);
      return;
    }
    try {
      this.worker.postMessage(req);
    } catch (err) {
      // Arguments that cannot be cloned to the thread: this call fails, the queue stays in step.
      call.reject(err);
      return;
    }
    if (this.inFlight.length === 0 && !this.detached) this.worker.ref();
    this.inFlight.push(call);
    Atomics.add(this.ctl, CTL_SEQ, 1);
    Atomics.notify(this.ctl, CTL_SEQ);
    if (this.inFlight.length === 1) this.startHead();
  }

  /** The front call has just started in the worker. */
  private startHead(): void {
    this.headSince = performance.now();
    const head = this.inFlight[0];
    if (!head || head.timeoutMs <= 0) return;
    // A pending timer due later than this call's deadline (an earlier call's longer one) is brought forward.
    if (this.watchdog && this.watchdogDue > this.headSince + head.timeoutMs) {
      clearTimeout(this.watchdog);
      this.watchdog = undefined;
    }
    if (!this.watchdog) this.armWatchdog(head.timeoutMs);
  }

  /** One timer per executor, re-armed lazily (not one setTimeout/clearTimeout pair per call). */
  private armWatchdog(ms: number): void {
    this.watchdogDue = performance.now() + ms;
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

  private onReply(r: ExecReply): void {
    if (r.id === 0) return;
    const call = this.inFlight.shift();
    if (!call || call.id !== r.id) {
      this.kill(new Error(`libvirt executor protocol error: reply ${r.id} for call ${call?.id}`));
      return;
    }
    if (!call.settled) {
      call.settled = true;
      if (r.ok) call.resolve(r.value);
      else call.reject(new LibvirtError(r.error));
    }
    if (this.inFlight.length > 0) this.startHead();
    else this.worker.unref();
  }

  private kill(err: unknown): void {
    if (this.dead !== undefined) return;
    this.dead = err;
    for (const c of this.inFlight.splice(0)) if (!c.settled) c.reject(err);
    if (this.watchdog) clearTimeout(this.watchdog);
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
  }
}
