/**
 * Process-wide libvirt plumbing on the main thread: the event-loop worker (started, with the default
 * event implementation registered, before the first connection is opened), the shared exit gate, and the
 * single 'exit' hook that drains native calls before Node tears the workers down.
 */
import { virErrorDomain, virErrorNumber } from '../generated/libvirt/enums.js';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { loadNative, type CallbackPtr, type GMainLoopPtr, type Native } from '../../native/libvirt.js';
import { LibvirtError } from './errors.js';
import { CTL_SEQ, CTL_STOP, GATE_ACTIVE, GATE_CLOSING, GATE_LOADING, GATE_SLOTS, type EventCommand, type EventMessage } from './protocol.js';
import { spawnWorker } from './spawn-worker.js';

type Distributive<T> = T extends unknown ? Omit<T, 'reqId'> : never;
export type EventCommandInput = Distributive<EventCommand>;
export type EventListener = (m: Exclude<EventMessage, { k: 'ready' } | { k: 'reply' }>) => void;

/** How long the exit hook waits for in-flight calls before shutting their connection sockets. */
const EXIT_DRAIN_MS = 500;
/** How long exit waits for worker threads that are loading koffi and libvirt (seconds under heavy load from sources). */
const EXIT_LOAD_WAIT_MS = 15_000;

class Runtime {
  readonly gate = new Int32Array(new SharedArrayBuffer(4 * GATE_SLOTS));
  private native: Native | undefined;
  private started: Promise<void> | undefined;
  private eventWorker: Worker | undefined;
  private eventPort: MessageChannel['port1'] | undefined;
  /** The GLib main loop the event worker's native thread runs (quit by the exit hook). */
  private loop: GMainLoopPtr | undefined;
  /** The close callback (a koffi function pointer owned by the event worker), for executors to register. */
  private closeCb: CallbackPtr | undefined;
  private reqSeq = 0;
  private readonly pending = new Map<number, { resolve: (v: number) => void; reject: (e: unknown) => void }>();
  private listeners = new Set<EventListener>();
  /** Socket fds of open connections, shut down by the exit hook when calls do not drain in time. */
  readonly connectionFds = new Set<number>();
  /** Executor control blocks (see executor-worker.ts), told to stop at exit. */
  readonly executorControls = new Set<Int32Array>();
  private openLock: Promise<void> = Promise.resolve();
  private exiting = false;

  get nativeLib(): Native {
    if (!this.native) {
      this.native = loadNative();
      this.native.api.virSetErrorFunc(null, this.native.noopErrorHandler);
    }
    return this.native;
  }

  /** The close callback's function pointer; valid once start() has resolved. */
  get closeCallback(): CallbackPtr {
    if (this.closeCb === undefined) throw new Error('libvirt runtime not started');
    return this.closeCb;
  }

  get isExiting(): boolean {
    return this.exiting;
  }

  /** Starts the event-loop worker once; resolves when libvirt's event implementation is registered. */
  start(): Promise<void> {
    this.started ??= this.startEventWorker().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  private async startEventWorker(): Promise<void> {
    const native = this.nativeLib;
    if (native.api.virInitialize() < 0) throw new LibvirtError({ code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_NONE, message: 'virInitialize failed', operation: 'virInitialize' });
    const { port1, port2 } = new MessageChannel();
    const worker = spawnWorker(new URL(`./event-worker${extname()}`, import.meta.url), {
      workerData: { port: port2, gate: this.gate.buffer },
      transferList: [port2],
    });
    this.eventWorker = worker;
    this.eventPort = port1;
    process.once('exit', () => this.onExit());
    await new Promise<void>((resolve, reject) => {
      const onError = (err: unknown): void => reject(err);
      worker.once('error', onError);
      worker.once('exit', (code) => reject(new Error(`libvirt event worker exited (${code}) before it was ready`)));
      port1.on('message', (m: EventMessage) => {
        if (m.k === 'ready') {
          this.loop = m.loop as GMainLoopPtr;
          this.closeCb = m.closeCallback as CallbackPtr;
          worker.off('error', onError);
          worker.removeAllListeners('exit');
          worker.on('error', (err) => this.failAll(err));
          // unref only after the listeners exist (a later .on('message') would ref again): an idle
          // event loop must not keep the process alive.
          worker.unref();
          port1.unref();
          resolve();
          return;
        }
        this.onEventMessage(m);
      });
    });
  }

  private onEventMessage(m: EventMessage): void {
    if (m.k === 'ready') return;
    if (m.k === 'reply') {
      const p = this.pending.get(m.reqId);
      if (!p) return;
      this.pending.delete(m.reqId);
      if (this.pending.size === 0) this.eventWorker?.unref();
      if (m.ok) p.resolve(m.value);
      else p.reject(new LibvirtError(m.error));
      return;
    }
    for (const l of this.listeners) l(m);
  }

  private failAll(err: unknown): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private waitingConsumers = 0;

  /** While some consumer awaits an event, the event channel keeps the process alive. */
  holdProcess(delta: 1 | -1): void {
    this.waitingConsumers += delta;
    if (delta === 1 && this.waitingConsumers === 1) this.eventPort?.ref();
    if (delta === -1 && this.waitingConsumers === 0) this.eventPort?.unref();
  }

  addListener(l: EventListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Runs a registration command on the event-loop thread (where every callback lives). */
  async eventCommand(c: EventCommandInput): Promise<number> {
    await this.start();
    const reqId = ++this.reqSeq;
    const p = new Promise<number>((resolve, reject) => this.pending.set(reqId, { resolve, reject }));
    this.eventWorker!.ref();
    this.eventPort!.postMessage({ ...c, reqId } as EventCommand);
    return p;
  }

  /** Serialises connection opens, so that the one new socket fd seen during an open is that connection's. */
  async withOpenLock<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.openLock;
    let release!: () => void;
    this.openLock = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Shuts a connection's socket down so that a call stuck in it returns (with a connection error). */
  shutdownSocket(fd: number): void {
    this.nativeLib.api.shutdown(fd, 2 /* SHUT_RDWR */);
  }

  private onExit(): void {
    this.exiting = true;
    // 1. Executors: start nothing new, then wait until no thread is inside koffi.
    Atomics.store(this.gate, GATE_CLOSING, 1);
    // Threads still loading koffi finish first (bounded CPU work; torn down mid-load, the process aborts).
    waitUntilZero(this.gate, GATE_LOADING, EXIT_LOAD_WAIT_MS);
    if (!waitUntilZero(this.gate, GATE_ACTIVE, EXIT_DRAIN_MS)) {
      // A call is stuck (e.g. on a hung QEMU monitor): shutting its socket makes libvirt return.
      for (const fd of this.connectionFds) this.shutdownSocket(fd);
      waitUntilZero(this.gate, GATE_ACTIVE, 1000);
    }
    for (const ctl of this.executorControls) {
      Atomics.store(ctl, CTL_STOP, 1);
      Atomics.notify(ctl, CTL_SEQ);
    }
    // 2. The event loop: quit it and wait (bounded) until its thread has left g_main_loop_run, so that no
    //    libvirt callback is on its way into a worker that Node is about to tear down. The loop thread
    //    owns GLib's default context while it runs: acquiring it here succeeds once it has returned.
    if (this.loop !== undefined) {
      const { api } = this.nativeLib;
      api.g_main_loop_quit(this.loop);
      api.g_main_context_wakeup(null);
      const deadline = Date.now() + 1000;
      const idle = new Int32Array(new SharedArrayBuffer(4));
      while (!api.g_main_context_acquire(null)) {
        if (Date.now() >= deadline) return;
        Atomics.wait(idle, 0, 0, 2);
      }
      api.g_main_context_release(null);
    }
  }
}

function waitUntilZero(arr: Int32Array, index: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = Atomics.load(arr, index);
    if (v === 0) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(arr, index, v, Math.min(left, 50));
  }
}

/** `.ts` when running from sources (tests, tsx), `.js` when built. */
export function extname(): string {
  return import.meta.url.endsWith('.ts') ? '.ts' : '.js';
}

export const runtime = new Runtime();
