import { EventEmitter } from 'node:events';
import { InvalidArgumentError } from '../common/errors.js';
import type { ConnectPtr, DomainPtr } from '../../native/libvirt.js';
import { CLOSE_REASON_NAMES } from './constants.js';
import { Domain } from './domain.js';
import { LibvirtError, isConnectionLostError } from './errors.js';
import {
  EventStream,
  lifecycleEvent,
  qemuMonitorEvent,
  type DomainEvent,
  type DomainEventKind,
  type DomainEventOptions,
  type QemuMonitorEvent,
  type QemuMonitorEventOptions,
} from './events.js';
import { Executor, type CallOptions } from './executor.js';
import type { DomainRef, ExecOps, OpName } from './ops.js';
import { runtime, type EventListener } from './runtime.js';

export interface OpenOptions {
  /** Open read-only (virConnectOpenReadOnly). */
  readOnly?: boolean;
  /**
   * Deadline for each call once it has started (default 60 000 ms; 0 = none). A call that misses it fails
   * with LibvirtTimeoutError and the connection is shut down, because the native call cannot be cancelled.
   */
  callTimeoutMs?: number;
}

export interface LibvirtVersion {
  major: number;
  minor: number;
  micro: number;
}

const LIST_ACTIVE = 1;
const LIST_INACTIVE = 2;
const CREATE_PAUSED = 1;
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

let subscriptionSeq = 0;
/** Idle executor threads kept for the next open (starting a thread costs 30-300 ms). */
const spareExecutors: Executor[] = [];
const MAX_SPARE_EXECUTORS = 2;

interface Subscription {
  kind: 'domain' | 'qemu';
  callbackIds: number[];
  deliver: (m: Parameters<EventListener>[0]) => void;
  end: (err?: unknown) => void;
  closed: boolean;
}

export interface ConnectionEvents {
  /** The connection dropped (daemon gone, keepalive timeout, or a call missed its deadline). */
  disconnected: [reason: LibvirtError | undefined];
}

/**
 * A connection to a libvirt daemon or driver. Every call runs in this connection's own worker thread,
 * one at a time (libvirt 9.0 mishandles several RPCs in flight on one connection when keepalive fires);
 * callbacks live in the shared event-loop worker.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  private closedState: 'open' | 'closing' | 'closed' = 'open';
  private lost: LibvirtError | undefined;
  private readonly handles = new Map<object, DomainPtr>();
  private readonly finalizer = new FinalizationRegistry<object>((token) => this.releaseHandle(token));
  private readonly subscriptions = new Map<number, Subscription>();
  private readonly unlisten: () => void;
  private closePromise: Promise<void> | undefined;

  private constructor(
    private readonly executor: Executor,
    /** The native handle, for code that binds further libvirt calls (see src/libvirt/ops.ts). */
    readonly pointer: ConnectPtr,
    /** The URI libvirt resolved (virConnectGetURI). */
    readonly uri: string,
    readonly readOnly: boolean,
    private readonly fd: number | null,
    private readonly callTimeoutMs: number,
    private readonly connId: number,
  ) {
    super();
    this.unlisten = runtime.addListener((m) => this.onEvent(m));
    executor.onStuck = (op) => this.markLost(new LibvirtError({ code: 68, domain: 0, message: 'a call missed its deadline; the connection was shut down', operation: op }), true);
  }

  /**
   * Opens a connection: `uri` defaults to LIBVIRT_DEFAULT_URI, else libvirt's own default.
   * e.g. `qemu+unix:///session?socket=/tmp/x/run/libvirt/libvirt-sock` or `test:///default`.
   */
  static async open(uri?: string, options: OpenOptions = {}): Promise<Connection> {
    if (uri !== undefined && (typeof uri !== 'string' || uri.trim() === '')) {
      throw new InvalidArgumentError(`Connection.open: uri must be a non-empty string, got ${JSON.stringify(uri)}`, {
        hint: "e.g. 'qemu:///system', 'qemu+unix:///session?socket=…', 'test:///default'; omit it to use LIBVIRT_DEFAULT_URI",
      });
    }
    const callTimeoutMs = options.callTimeoutMs ?? 60_000;
    if (!Number.isFinite(callTimeoutMs) || callTimeoutMs < 0) {
      throw new InvalidArgumentError(`Connection.open: callTimeoutMs must be ≥ 0, got ${String(callTimeoutMs)}`, { hint: 'use milliseconds; 0 disables the deadline' });
    }
    // The event implementation must be registered before the first virConnectOpen in the process.
    // (Starting the executor thread meanwhile is fine: it opens nothing until asked.)
    const [, executor] = await Promise.all([runtime.start(), spareExecutors.pop() ?? Executor.create()]);
    const readOnly = options.readOnly ?? false;
    let opened: Awaited<ReturnType<ExecOps['open']>>;
    try {
      opened = await runtime.withOpenLock(() => executor.call('open', [uri ?? process.env.LIBVIRT_DEFAULT_URI ?? null, readOnly], { timeoutMs: callTimeoutMs }));
    } catch (err) {
      recycle(executor);
      throw err;
    }
    const connId = ++subscriptionSeq;
    const conn = new Connection(executor, opened.conn, opened.uri, readOnly, opened.fd, callTimeoutMs, connId);
    if (opened.fd !== null) runtime.connectionFds.add(opened.fd);
    // Close callback (remote drivers only; others decline): tells us when the daemon goes away.
    await executor.exclusive(() => runtime.eventCommand({ cmd: 'closeCallback', conn: opened.conn, connId, register: true })).catch(() => undefined);
    return conn;
  }

  /** True until close() or a disconnect. */
  get isOpen(): boolean {
    return this.closedState === 'open' && this.lost === undefined;
  }

  /** Number of native domain handles this connection holds (released on GC of their Domain, or on close). */
  get openDomainHandles(): number {
    return this.handles.size;
  }

  /** Number of event subscriptions registered in libvirt. */
  get activeSubscriptions(): number {
    return this.subscriptions.size;
  }

  /** @internal Runs one op from src/libvirt/ops.ts on this connection's worker. */
  exec<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, options: CallOptions = {}): Promise<ReturnType<ExecOps[K]>> {
    if (this.closedState !== 'open') {
      return Promise.reject(new LibvirtError({ code: 6, domain: 0, message: 'the connection is closed', operation: op }, { hint: 'open a new Connection' }));
    }
    if (this.lost) {
      return Promise.reject(new LibvirtError({ code: 6, domain: 0, message: `the connection was lost: ${this.lost.message}`, operation: op }, { hint: 'open a new Connection', cause: this.lost }));
    }
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(new InvalidArgumentError(`timeoutMs must be ≥ 0, got ${String(options.timeoutMs)}`, { hint: 'use milliseconds; 0 disables the deadline' }));
    }
    return this.executor.call(op, args, { timeoutMs }).catch((err: unknown) => {
      if (err instanceof LibvirtError && isConnectionLostError(err.code, err.message)) this.markLost(err, false);
      throw err;
    });
  }

  async isAlive(): Promise<boolean> {
    if (!this.isOpen) return false;
    try {
      return await this.exec('isAlive', [this.pointer]);
    } catch {
      return false;
    }
  }

  hostname(options?: CallOptions): Promise<string> {
    return this.exec('hostname', [this.pointer], options);
  }

  /** The libvirt library version on the daemon's side. */
  libVersion(options?: CallOptions): Promise<LibvirtVersion> {
    return this.exec('libVersion', [this.pointer], options);
  }

  /** The hypervisor's version (for QEMU: QEMU's version). */
  hypervisorVersion(options?: CallOptions): Promise<LibvirtVersion> {
    return this.exec('hypervisorVersion', [this.pointer], options);
  }

  /** Domains on this connection; by default both running and defined-but-stopped ones. */
  async listDomains(options: { active?: boolean; inactive?: boolean } & CallOptions = {}): Promise<Domain[]> {
    const active = options.active ?? true;
    const inactive = options.inactive ?? true;
    if (!active && !inactive) return [];
    const flags = active && inactive ? 0 : active ? LIST_ACTIVE : LIST_INACTIVE;
    const refs = await this.exec('listDomains', [this.pointer, flags], options);
    return refs.map((r) => this.adopt(r));
  }

  /** Looks a domain up by name, or by UUID when given one. Fails with VIR_ERR_NO_DOMAIN when there is none. */
  async lookupDomain(nameOrUuid: string, options?: CallOptions): Promise<Domain> {
    if (typeof nameOrUuid !== 'string' || nameOrUuid === '') {
      throw new InvalidArgumentError(`lookupDomain expects a domain name or UUID, got ${JSON.stringify(nameOrUuid)}`, { hint: 'pass the name shown by listDomains()' });
    }
    const ref = UUID_RE.test(nameOrUuid)
      ? await this.exec('lookupByUUID', [this.pointer, nameOrUuid], options)
      : await this.exec('lookupByName', [this.pointer, nameOrUuid], options);
    return this.adopt(ref);
  }

  async lookupDomainById(id: number, options?: CallOptions): Promise<Domain> {
    if (!Number.isInteger(id) || id < 0) {
      throw new InvalidArgumentError(`lookupDomainById expects a non-negative integer, got ${String(id)}`, { hint: 'running domains have ids; see dom.id()' });
    }
    return this.adopt(await this.exec('lookupByID', [this.pointer, id], options));
  }

  /** Defines (or redefines) a persistent domain from XML; it is not started. */
  async defineXML(xml: string, options?: CallOptions): Promise<Domain> {
    checkXml('defineXML', xml);
    return this.adopt(await this.exec('defineXML', [this.pointer, xml], options));
  }

  /** Creates and starts a transient domain from XML (gone once it stops). */
  async createXML(xml: string, options: { paused?: boolean } & CallOptions = {}): Promise<Domain> {
    checkXml('createXML', xml);
    return this.adopt(await this.exec('createXML', [this.pointer, xml, options.paused ? CREATE_PAUSED : 0], options));
  }

  /** Lifecycle and reboot events, filtered by libvirt (domain) and by kind; deregistered when the iteration stops. */
  domainEvents(options: DomainEventOptions = {}): EventStream<DomainEvent> {
    const kinds: DomainEventKind[] = options.kinds ?? ['lifecycle', 'reboot'];
    for (const k of kinds) {
      if (k !== 'lifecycle' && k !== 'reboot') {
        throw new InvalidArgumentError(`domainEvents: unknown kind ${JSON.stringify(k)}`, { hint: "kinds can be 'lifecycle' and 'reboot'" });
      }
    }
    this.checkDomain(options.domain);
    const dom = options.domain?.pointer ?? null;
    return this.subscribe<DomainEvent>('domain', options, 'libvirt domain events', (sub) =>
      [...new Set(kinds)].map((kind) => ({ cmd: 'register' as const, conn: this.pointer, kind, dom, sub })),
    );
  }

  /** QEMU monitor events (virConnectDomainQemuMonitorEventRegister), filtered by libvirt by domain and event name/regex. */
  qemuMonitorEvents(options: QemuMonitorEventOptions = {}): EventStream<QemuMonitorEvent> {
    if (options.event !== undefined && (typeof options.event !== 'string' || options.event === '')) {
      throw new InvalidArgumentError('qemuMonitorEvents: event must be a non-empty string', { hint: "e.g. 'STOP', or '^(STOP|RESUME)$' with regex: true" });
    }
    this.checkDomain(options.domain);
    const flags = (options.regex ? 1 : 0) | (options.nocase ? 2 : 0);
    const dom = options.domain?.pointer ?? null;
    return this.subscribe<QemuMonitorEvent>('qemu', options, 'QEMU monitor events', (sub) => [
      { cmd: 'registerQemu' as const, conn: this.pointer, dom, event: options.event ?? null, flags, sub },
    ]);
  }

  /** Deregisters events, releases every domain handle and closes the connection. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    const wasLost = this.lost !== undefined;
    this.closedState = 'closing';
    const subs = [...this.subscriptions.values()];
    if (!wasLost) {
      await this.executor
        .exclusive(async () => {
          for (const s of subs) await this.deregister(s);
          await runtime.eventCommand({ cmd: 'closeCallback', conn: this.pointer, connId: this.connId, register: false }).catch(() => undefined);
        })
        .catch(() => undefined);
    } else {
      await this.executor.exclusive(() => runtime.eventCommand({ cmd: 'closeCallback', conn: this.pointer, connId: this.connId, register: false })).catch(() => undefined);
    }
    for (const s of subs) s.end();
    this.subscriptions.clear();
    const ptrs = [...this.handles.values()];
    for (const token of this.handles.keys()) this.finalizer.unregister(token);
    this.handles.clear();
    try {
      await this.executor.call('close', [this.pointer, ptrs], { timeoutMs: this.callTimeoutMs });
    } catch (err) {
      // A lost connection still closes (libvirt reports the old error); anything else is worth surfacing.
      if (!wasLost && !(err instanceof LibvirtError && err.isConnectionLost)) throw err;
    } finally {
      this.closedState = 'closed';
      this.unlisten();
      if (this.fd !== null) runtime.connectionFds.delete(this.fd);
      recycle(this.executor);
    }
  }

  private checkDomain(domain: Domain | undefined): void {
    if (domain !== undefined && (!(domain instanceof Domain) || domain.connection !== this)) {
      throw new InvalidArgumentError('the domain filter must be a Domain from this same connection', { hint: 'look the domain up on this connection first' });
    }
  }

  private subscribe<T>(
    kind: 'domain' | 'qemu',
    options: DomainEventOptions | QemuMonitorEventOptions,
    what: string,
    commands: (sub: number) => Parameters<typeof runtime.eventCommand>[0][],
  ): EventStream<T> {
    const subId = ++subscriptionSeq;
    const sub: Subscription = { kind, callbackIds: [], closed: false, deliver: () => {}, end: () => {} };
    const stream = new EventStream<T>(
      options,
      what,
      () => {
        sub.closed = true;
        if (this.subscriptions.get(subId) === sub) {
          this.subscriptions.delete(subId);
          if (this.isOpen) void this.executor.exclusive(() => this.deregister(sub)).catch(() => undefined);
        }
      },
      (delta) => runtime.holdProcess(delta),
    );
    sub.deliver = (m) => {
      if (m.k === 'lifecycle') stream.queue.push(lifecycleEvent({ name: m.name, uuid: m.uuid }, m.event, m.detail) as T);
      else if (m.k === 'reboot') stream.queue.push({ kind: 'reboot', domain: { name: m.name, uuid: m.uuid } } as T);
      else if (m.k === 'qemu') stream.queue.push(qemuMonitorEvent({ name: m.name, uuid: m.uuid }, m.event, m.seconds, m.micros, m.details) as T);
    };
    sub.end = (err) => stream.queue.end(err);
    if (!this.isOpen) {
      const err = new LibvirtError({ code: 6, domain: 0, message: 'the connection is closed' }, { hint: 'open a new Connection' });
      stream.settleReady(err);
      stream.queue.end(err);
      return stream;
    }
    this.subscriptions.set(subId, sub);
    // exclusive() holds calls made after this one until libvirt has registered the callback.
    void this.executor
      .exclusive(async () => {
        for (const c of commands(subId)) {
          if (sub.closed) break;
          sub.callbackIds.push(await runtime.eventCommand(c));
        }
        if (sub.closed) await this.deregister(sub);
      })
      .then(
        () => stream.settleReady(),
        (err: unknown) => {
          this.subscriptions.delete(subId);
          void this.executor.exclusive(() => this.deregister(sub)).catch(() => undefined);
          stream.settleReady(err);
          stream.queue.end(err);
        },
      );
    return stream;
  }

  private async deregister(sub: Subscription): Promise<void> {
    const ids = sub.callbackIds.splice(0);
    for (const callbackId of ids) {
      await runtime.eventCommand({ cmd: 'deregister', conn: this.pointer, kind: sub.kind, callbackId }).catch(() => undefined);
    }
  }

  private onEvent(m: Parameters<EventListener>[0]): void {
    if (m.k === 'closed') {
      if (m.connId === this.connId && this.closedState === 'open') {
        const reason = CLOSE_REASON_NAMES[m.reason] ?? `reason ${m.reason}`;
        this.markLost(new LibvirtError({ code: 1, domain: 7, message: `connection closed (${reason})`, operation: 'virConnectCloseFunc' }, { hint: 'the daemon went away or stopped answering: open a new Connection' }), false);
      }
      return;
    }
    this.subscriptions.get(m.sub)?.deliver(m);
  }

  private markLost(reason: LibvirtError, shutdownSocket: boolean): void {
    if (shutdownSocket && this.fd !== null) runtime.shutdownSocket(this.fd);
    if (this.lost || this.closedState !== 'open') return;
    this.lost = reason;
    for (const s of this.subscriptions.values()) s.end(reason);
    this.subscriptions.clear();
    this.emit('disconnected', reason);
  }

  private adopt(ref: DomainRef): Domain {
    if (this.closedState !== 'open') {
      // Closed while the call was in flight: do not leak the handle.
      void this.executor.call('domainFree', [ref.ptr]).catch(() => undefined);
      throw new LibvirtError({ code: 6, domain: 0, message: 'the connection was closed during the call' }, { hint: 'open a new Connection' });
    }
    const dom = new Domain(this, ref.ptr, ref.name, ref.uuid);
    const token = {};
    this.handles.set(token, ref.ptr);
    this.finalizer.register(dom, token, token);
    return dom;
  }

  private releaseHandle(token: object): void {
    const ptr = this.handles.get(token);
    if (ptr === undefined) return;
    this.handles.delete(token);
    if (this.closedState !== 'closed') void this.executor.call('domainFree', [ptr]).catch(() => undefined);
  }
}

function checkXml(what: string, xml: unknown): void {
  if (typeof xml !== 'string' || !xml.trimStart().startsWith('<')) {
    throw new InvalidArgumentError(`${what} expects domain XML, got ${typeof xml === 'string' ? JSON.stringify(xml.slice(0, 60)) : typeof xml}`, {
      hint: 'pass a <domain type=…>…</domain> document (see tinyGuestXml() in libqemu/testing for a minimal one)',
    });
  }
}

function recycle(executor: Executor): void {
  if (!executor.isDead && !executor.busy && spareExecutors.length < MAX_SPARE_EXECUTORS) {
    executor.onStuck = undefined;
    spareExecutors.push(executor);
  } else {
    void executor.terminate();
  }
}
