/**
 * A QMP proxy on a guest's passthrough route (libvirt's virDomainQemuMonitorCommand) that serves its
 * clients on a thread of its own, which makes the libvirt calls itself on a connection reserved for it:
 * no hand-off between threads per command, as in libvirt's virt-qemu-qmp-proxy (which runs everything
 * on one thread) but with every guarantee of QmpProxy (many clients, QEMU's input rules, the ownership
 * policy, events). The main thread keeps the guest's event subscription, replaces the connection after
 * libvirtd restarts, and ends calls that miss their deadline.
 */
import { promises as fs } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { InvalidArgumentError } from '../../common/errors.js';
import type { Guest } from '../../hybrid/guest.js';
import type { PassthroughReservation } from '../../hybrid/guest-context.js';
import { libvirtEventFilter, passthroughCapabilities } from '../../hybrid/passthrough-transport.js';
import { OwnershipPolicy } from '../../hybrid/policy.js';
import { LibvirtError } from '../../libvirt/errors.js';
import { extname, runtime } from '../../libvirt/runtime.js';
import { spawnWorker } from '../../libvirt/spawn-worker.js';
import type { QmpGreeting } from '../../qmp/client.js';
import { ProxyError } from '../errors.js';
import { prepareListenPath } from '../listen-path.js';
import { checkPositive, checkProxyOptions, type ProxyLogger, type ProxyStats, type QmpProxyOptions } from '../server.js';
import {
  SHARED_SLOTS,
  STAT_ACCEPTED,
  STAT_CLIENTS,
  STAT_COMMANDS,
  STAT_DROPPED,
  STAT_EVENTS,
  WATCH_CALL_SEQ,
  WATCH_IN_CALL,
  WATCH_TIMED_OUT,
  type FromThread,
  type ThreadInit,
  type ToThread,
} from './protocol.js';

export interface PassthroughProxyOptions extends Omit<QmpProxyOptions, 'describeRefusal'> {
  /** Commands the proxy's clients may send although libvirt owns the state they change (or 'all'). */
  allow?: readonly string[] | 'all';
  /** Check commands against QEMU's schema before sending (default false: clients get QEMU's own answers). */
  validate?: boolean;
  /** Only these QEMU events, filtered by libvirt itself. Default: every event of the guest. */
  events?: readonly string[];
  /**
   * Words a refused command's reply (runs on the proxy's thread, so given as a module): an ES module
   * (URL) exporting `describeRefusal(err: PolicyError, context): RefusalText`, called with `context`.
   */
  describeRefusal?: { module: URL | string; context?: unknown };
  /** How long start() waits for the thread to serve (default 60 s: loading the schema with validate). */
  startTimeoutMs?: number;
}

const WATCHDOG_MS = 100;
/** How long close() lets a running call finish before shutting its connection down. */
const CLOSE_GRACE_MS = 500;

export class PassthroughProxy implements AsyncDisposable {
  /**
   * Serves `guest`'s QMP through libvirt's passthrough on `options.listen`. The guest must be running;
   * the proxy stops when closed, when the guest's QEMU goes away, or when the Hypervisor closes.
   */
  static async start(guest: Guest, options: PassthroughProxyOptions): Promise<PassthroughProxy> {
    if (!guest || typeof (guest as { reservePassthrough?: unknown }).reservePassthrough !== 'function') {
      throw new InvalidArgumentError('PassthroughProxy.start: guest must be a Guest (hv.guest(name))', { hint: 'e.g. await PassthroughProxy.start(await hv.guest("web1"), { listen })' });
    }
    checkProxyOptions('PassthroughProxy.start', options);
    checkPositive('startTimeoutMs', options.startTimeoutMs);
    libvirtEventFilter(options.events); // validates the names
    if (options.allow !== undefined) new OwnershipPolicy({ allow: options.allow }); // validates the opt-ins here, typed
    const refusal = options.describeRefusal;
    if (refusal !== undefined && !(refusal !== null && typeof refusal === 'object' && (refusal.module instanceof URL || (typeof refusal.module === 'string' && refusal.module !== '')))) {
      throw new InvalidArgumentError('describeRefusal must be { module: URL | string, context? }: a module exporting describeRefusal(err, context)', {
        hint: "e.g. { module: new URL('./refusal.js', import.meta.url), context: { guest: 'web1' } }; it runs on the proxy's thread",
      });
    }
    const path = await prepareListenPath(options.listen);
    const proxy = new PassthroughProxy(guest, options, path);
    try {
      await proxy.begin();
    } catch (err) {
      await proxy.close('failed to start');
      throw err;
    }
    return proxy;
  }

  private readonly shared = new Int32Array(new SharedArrayBuffer(4 * SHARED_SLOTS));
  private reservation: PassthroughReservation | undefined;
  private worker: Worker | undefined;
  private events: AsyncIterator<unknown> & { return(): Promise<unknown> } | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private watched = { seq: 0, since: 0 };
  private renewing = false;
  private exited = false;
  private stopping: Promise<void> | undefined;
  private resolveDone!: (reason: string) => void;
  /** What clients are greeted with (the real QEMU version); set once started. */
  greeting!: QmpGreeting;
  /** Resolves with the reason once the proxy has stopped. */
  readonly done: Promise<string>;

  private constructor(
    private readonly guest: Guest,
    private readonly options: PassthroughProxyOptions,
    /** The absolute path served on. */
    readonly path: string,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** The proxy's counters, as its thread last published them (at most 0.1 s old). */
  get stats(): ProxyStats {
    const s = this.shared;
    return { clients: Atomics.load(s, STAT_CLIENTS), accepted: Atomics.load(s, STAT_ACCEPTED), dropped: Atomics.load(s, STAT_DROPPED), commands: Atomics.load(s, STAT_COMMANDS), events: Atomics.load(s, STAT_EVENTS) };
  }

  get clientCount(): number {
    return Atomics.load(this.shared, STAT_CLIENTS);
  }

  private async begin(): Promise<void> {
    this.reservation = await this.guest.reservePassthrough((reason) => this.lost(reason));
    const caps = passthroughCapabilities(this.reservation.uri);
    if (this.options.fdPassing && !caps.fdPassing) {
      // refused before a thread starts, as QmpProxy refuses such a backend
      throw new ProxyError(`fdPassing: libvirt's passthrough on ${this.reservation.guest} cannot pass file descriptors: ${caps.fdPassingUnavailable!.reason}`, { hint: caps.fdPassingUnavailable!.hint });
    }
    const filter = libvirtEventFilter(this.options.events);
    const events = this.reservation.events({ ...filter, bufferSize: this.options.events ? 1000 : 10_000 });
    this.events = events;
    await events.ready;
    const { maxClients, maxClientOutputBytes, maxPendingPerClient, maxMessageBytes, commandTimeoutMs, fdPassing } = this.options;
    const init: ThreadInit = {
      gate: runtime.gate.buffer as SharedArrayBuffer,
      shared: this.shared.buffer as SharedArrayBuffer,
      conn: this.reservation.lane.conn,
      uuid: this.reservation.uuid,
      guest: this.reservation.guest,
      uri: this.reservation.uri,
      listen: this.path,
      allow: this.options.allow,
      validate: this.options.validate ?? false,
      events: this.options.events,
      proxy: { maxClients, maxClientOutputBytes, maxPendingPerClient, maxMessageBytes, commandTimeoutMs, fdPassing },
      refusal: this.options.describeRefusal ? { module: String(this.options.describeRefusal.module), context: this.options.describeRefusal.context } : undefined,
      debug: this.options.logger?.debug !== undefined,
    };
    const worker = spawnWorker(new URL(`./worker${extname()}`, import.meta.url), { workerData: init });
    this.worker = worker;
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ProxyError(`the passthrough proxy's thread did not start within ${this.options.startTimeoutMs ?? 60_000} ms`)), this.options.startTimeoutMs ?? 60_000);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      worker.on('message', (m: FromThread) => {
        if (m.k === 'ready') {
          this.greeting = m.greeting;
          settle(resolve);
        } else if (m.k === 'failed') {
          const hint = typeof m.error.hint === 'string' ? m.error.hint : undefined;
          settle(() => reject(new ProxyError(`the passthrough proxy could not start: ${m.error.message}`, hint === undefined ? {} : { hint })));
        } else this.onMessage(m);
      });
      worker.on('error', (err) => {
        settle(() => reject(err));
        void this.close(`its thread failed: ${err.message}`);
      });
      worker.on('exit', () => {
        this.exited = true;
        settle(() => reject(new ProxyError("the passthrough proxy's thread ended before serving")));
        void this.close('its thread ended');
      });
    });
    void this.pumpEvents(events);
    await started;
    if (commandTimeoutMs) this.startWatchdog(commandTimeoutMs);
  }

  private onMessage(m: FromThread): void {
    switch (m.k) {
      case 'log':
        this.log(m.level, m.message, m.details);
        break;
      case 'need-lane':
        void this.renewLane();
        break;
      case 'done':
        void this.close(m.reason);
        break;
    }
  }

  private post(m: ToThread): void {
    try {
      this.worker?.postMessage(m);
    } catch {
      // the thread is gone: close() is under way
    }
  }

  private async pumpEvents(events: AsyncIterator<unknown>): Promise<void> {
    try {
      for (;;) {
        const r = await events.next();
        if (r.done) break;
        const ev = r.value as { kind?: string; event: string; data: unknown; timestamp: { seconds: number; microseconds: number } };
        if (ev.kind === 'gap') continue; // libvirtd restarted: QMP has no word for a gap
        this.post({ k: 'event', event: ev.event, data: ev.data, seconds: ev.timestamp.seconds, microseconds: ev.timestamp.microseconds });
      }
      void this.close('the libvirt connection was closed');
    } catch (err) {
      void this.close(`the guest's events ended: ${(err as Error).message}`);
    }
  }

  /** The reserved connection is gone (libvirtd went away, or the Hypervisor closes). */
  private lost(reason: Error): void {
    this.post({ k: 'lost', message: reason.message });
  }

  /** The thread freed its domain on a dead (or timed-out) connection: give it another, once libvirt is back. */
  private async renewLane(): Promise<void> {
    if (this.renewing || this.stopping) return;
    this.renewing = true;
    try {
      const old = this.reservation;
      this.reservation = undefined;
      await old?.lane.release();
      for (let attempt = 0; !this.stopping; attempt++) {
        try {
          const next = await this.guest.reservePassthrough((reason) => this.lost(reason));
          if (this.stopping) {
            await next.lane.release();
            return;
          }
          this.reservation = next;
          this.post({ k: 'lane', conn: next.lane.conn });
          this.log('info', `proxy on ${this.path}: a new libvirt connection for the proxy's thread (the last one was lost or timed out)`);
          return;
        } catch (err) {
          // Only a connection lost again meanwhile is worth another try; the guest stopped or the
          // Hypervisor closed: nothing left to serve.
          if (attempt >= 2 || !(err instanceof LibvirtError && err.isConnectionLost)) {
            void this.close(`the guest can no longer be reached: ${(err as Error).message}`);
            return;
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      this.renewing = false;
    }
  }

  /** Ends a libvirt call that runs past `timeoutMs` by shutting its connection down (the thread answers it as timed out). */
  private startWatchdog(timeoutMs: number): void {
    this.watchdog = setInterval(() => {
      const s = this.shared;
      const seq = Atomics.load(s, WATCH_CALL_SEQ);
      if (!Atomics.load(s, WATCH_IN_CALL)) return;
      const now = performance.now();
      if (seq !== this.watched.seq) {
        this.watched = { seq, since: now };
        return;
      }
      const fd = this.reservation?.lane.fd;
      if (now - this.watched.since >= timeoutMs && fd !== undefined && fd !== null && Atomics.load(s, WATCH_TIMED_OUT) !== seq) {
        Atomics.store(s, WATCH_TIMED_OUT, seq);
        runtime.shutdownSocket(fd);
      }
    }, Math.min(WATCHDOG_MS, Math.max(10, timeoutMs / 4)));
    this.watchdog.unref();
  }

  /** Stops serving, disconnects every client, removes the socket and releases the reserved connection. */
  close(reason = 'closed'): Promise<void> {
    this.stopping ??= (async () => {
      if (this.watchdog) clearInterval(this.watchdog);
      const worker = this.worker;
      if (worker) {
        const exited = this.exited ? Promise.resolve() : new Promise<void>((r) => worker.once('exit', () => r()));
        this.post({ k: 'close', reason });
        // A call stuck on a hung QEMU would hold the thread: its connection is shut down after a grace.
        const grace = setTimeout(() => {
          const fd = this.reservation?.lane.fd;
          if (fd !== undefined && fd !== null) runtime.shutdownSocket(fd);
        }, CLOSE_GRACE_MS);
        // Never torn down inside libvirt (koffi aborts the process): a thread still in a call is left to the exit gate.
        const bounded = setTimeout(() => (Atomics.load(this.shared, WATCH_IN_CALL) ? worker.unref() : void worker.terminate()), 5000);
        await exited;
        clearTimeout(grace);
        clearTimeout(bounded);
      }
      await this.events?.return().catch(() => undefined);
      await this.reservation?.lane.release().catch(() => undefined);
      this.reservation = undefined;
      await fs.unlink(this.path).catch(() => undefined); // the thread's proxy removed it, unless it never started
      this.resolveDone(reason);
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private log(level: keyof ProxyLogger, message: string, details?: Record<string, unknown>): void {
    try {
      this.options.logger?.[level]?.(message, details);
    } catch {
      // logging must never break the proxy
    }
  }
}
