import { EventEmitter } from 'node:events';
import { InvalidArgumentError } from '../common/errors.js';
import type { ConnectPtr, DomainPtr } from '../../native/libvirt.js';
import { CLOSE_REASON_NAMES } from './constants.js';
import { Domain } from './domain.js';
import { LibvirtError, isConnectionLostError } from './errors.js';
import {
  EventStream,
  lifecycleEvent,
  agentLifecycleEvent,
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

type EventPayload = Exclude<Parameters<EventListener>[0], { k: 'closed' }>;

/** One consumer's stream; it is served by one or more shared registrations. */
interface Subscription {
  deliver: (m: EventPayload) => void;
  end: (err?: unknown) => void;
  registrations: Registration[];
}

/**
 * One libvirt callback registration, shared by every subscription with the same filter: libvirt refuses
 * a second registration of one callback for the same event and domain ("event callback already
 * tracked"), whatever the opaque. The last subscription to leave deregisters it.
 */
interface Registration {
  readonly key: string;
  /** The opaque libvirt passes back with each event. */
  readonly id: number;
  readonly kind: 'domain' | 'qemu';
  callbackId: number | undefined;
  registered: Promise<void>;
  readonly subscribers: Set<Subscription>;
}

interface RegistrationSpec {
  /** Equal keys mean equal filters (kind/event, domain UUID, name and flags). */
  key: string;
  kind: 'domain' | 'qemu';
  command: (id: number) => Parameters<typeof runtime.eventCommand>[0];
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
  private readonly subscriptions = new Set<Subscription>();
  private readonly registrations = new Map<string, Registration>();
  private readonly registrationsById = new Map<number, Registration>();
  /** Registration RPCs run one after another, so a deregistration always lands before a later registration. */
  private eventOps: Promise<void> = Promise.resolve();
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
    await executor.call('registerCloseCallback', [opened.conn, runtime.closeCallback, connId], { timeoutMs: callTimeoutMs }).catch(() => undefined);
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

  /** Number of open event streams (domainEvents / qemuMonitorEvents). */
  get activeSubscriptions(): number {
    return this.subscriptions.size;
  }

  /** Number of callbacks registered in libvirt for them (streams with equal filters share one). */
  get activeEventRegistrations(): number {
    return this.registrations.size;
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
      if (k !== 'lifecycle' && k !== 'reboot' && k !== 'migration-iteration' && k !== 'job-completed' && k !== 'agent-lifecycle') {
        throw new InvalidArgumentError(`domainEvents: unknown kind ${JSON.stringify(k)}`, { hint: "kinds can be 'lifecycle', 'reboot', 'migration-iteration', 'job-completed' and 'agent-lifecycle'" });
      }
    }
    this.checkDomain(options.domain);
    const dom = options.domain?.pointer ?? null;
    const target = options.domain?.uuid ?? '*';
    return this.subscribe<DomainEvent>(
      options,
      'libvirt domain events',
      [...new Set(kinds)].map((kind) => ({ key: `domain:${kind}:${target}`, kind: 'domain', command: (sub) => ({ cmd: 'register', conn: this.pointer, kind, dom, sub }) })),
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
    const event = options.event ?? null;
    const key = `qemu:${options.domain?.uuid ?? '*'}:${flags}:${event === null ? '*' : JSON.stringify(event)}`;
    return this.subscribe<QemuMonitorEvent>(options, 'QEMU monitor events', [
      { key, kind: 'qemu', command: (sub) => ({ cmd: 'registerQemu', conn: this.pointer, dom, event, flags, sub }) },
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
    const subs = [...this.subscriptions];
    const regs = [...this.registrations.values()];
    this.subscriptions.clear();
    this.registrations.clear();
    // After every queued (de)registration: they all run before the close.
    await this.eventOp(async () => {
      if (!wasLost) for (const r of regs) await this.deregister(r);
    }).catch(() => undefined);
    this.registrationsById.clear();
    for (const s of subs) s.end();
    const ptrs = [...this.handles.values()];
    for (const token of this.handles.keys()) this.finalizer.unregister(token);
    this.handles.clear();
    try {
      await this.executor.call('close', [this.pointer, ptrs, runtime.closeCallback], { timeoutMs: this.callTimeoutMs });
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

  private subscribe<T>(options: DomainEventOptions | QemuMonitorEventOptions, what: string, specs: RegistrationSpec[]): EventStream<T> {
    const sub: Subscription = { registrations: [], deliver: () => {}, end: () => {} };
    const stream = new EventStream<T>(options, what, () => this.unsubscribe(sub), (delta) => runtime.holdProcess(delta));
    sub.deliver = (m) => {
      if (m.k === 'lifecycle') stream.queue.push(lifecycleEvent({ name: m.name, uuid: m.uuid }, m.event, m.detail) as T);
      else if (m.k === 'reboot') stream.queue.push({ kind: 'reboot', domain: { name: m.name, uuid: m.uuid } } as T);
      else if (m.k === 'migration-iteration') stream.queue.push({ kind: 'migration-iteration', domain: { name: m.name, uuid: m.uuid }, iteration: m.iteration } as T);
      else if (m.k === 'agent-lifecycle') stream.queue.push(agentLifecycleEvent({ name: m.name, uuid: m.uuid }, m.state, m.reason) as T);
      else if (m.k === 'job-completed') stream.queue.push({ kind: 'job-completed', domain: { name: m.name, uuid: m.uuid }, stats: m.stats } as T);
      else stream.queue.push(qemuMonitorEvent({ name: m.name, uuid: m.uuid }, m.event, m.seconds, m.micros, m.details) as T);
    };
    sub.end = (err) => stream.queue.end(err);
    if (!this.isOpen) {
      const err = new LibvirtError({ code: 6, domain: 0, message: 'the connection is closed' }, { hint: 'open a new Connection' });
      stream.settleReady(err);
      stream.queue.end(err);
      return stream;
    }
    this.subscriptions.add(sub);
    sub.registrations = specs.map((spec) => this.join(spec, sub));
    Promise.all(sub.registrations.map((r) => r.registered)).then(
      () => stream.settleReady(),
      (err: unknown) => {
        stream.settleReady(err);
        stream.queue.end(err); // → unsubscribe
      },
    );
    return stream;
  }

  /** Adds `sub` to the registration for `spec`'s filter, registering it in libvirt if it is the first. */
  private join(spec: RegistrationSpec, sub: Subscription): Registration {
    let reg = this.registrations.get(spec.key);
    if (!reg) {
      const created: Registration = { key: spec.key, id: ++subscriptionSeq, kind: spec.kind, callbackId: undefined, registered: Promise.resolve(), subscribers: new Set() };
      this.registrations.set(spec.key, created);
      this.registrationsById.set(created.id, created);
      // eventOp() holds calls made after this one until libvirt has registered the callback.
      created.registered = this.eventOp(async () => {
        created.callbackId = await runtime.eventCommand(spec.command(created.id));
      });
      created.registered.catch(() => this.forget(created));
      reg = created;
    }
    reg.subscribers.add(sub);
    return reg;
  }

  private unsubscribe(sub: Subscription): void {
    if (!this.subscriptions.delete(sub)) return;
    for (const reg of sub.registrations) {
      reg.subscribers.delete(sub);
      if (reg.subscribers.size > 0 || this.registrations.get(reg.key) !== reg) continue;
      this.forget(reg);
      // Queued after its registration; a new registration for the same filter queues after this.
      if (this.isOpen) void this.eventOp(() => this.deregister(reg)).catch(() => undefined);
    }
  }

  private forget(reg: Registration): void {
    if (this.registrations.get(reg.key) === reg) this.registrations.delete(reg.key);
    this.registrationsById.delete(reg.id);
  }

  /** Runs registration RPCs in order, each exclusive on this connection (entered now, so later calls wait). */
  private eventOp(fn: () => Promise<void>): Promise<void> {
    const previous = this.eventOps;
    const op = this.executor.exclusive(async () => {
      await previous;
      await fn();
    });
    this.eventOps = op.catch(() => undefined);
    return op;
  }

  private async deregister(reg: Registration): Promise<void> {
    const callbackId = reg.callbackId;
    if (callbackId === undefined) return;
    reg.callbackId = undefined;
    await runtime.eventCommand({ cmd: 'deregister', conn: this.pointer, kind: reg.kind, callbackId }).catch(() => undefined);
  }

  private onEvent(m: Parameters<EventListener>[0]): void {
    if (m.k === 'closed') {
      if (m.connId === this.connId && this.closedState === 'open') {
        const reason = CLOSE_REASON_NAMES[m.reason] ?? `reason ${m.reason}`;
        this.markLost(new LibvirtError({ code: 1, domain: 7, message: `connection closed (${reason})`, operation: 'virConnectCloseFunc' }, { hint: 'the daemon went away or stopped answering: open a new Connection' }), false);
      }
      return;
    }
    const reg = this.registrationsById.get(m.sub);
    if (reg) for (const s of reg.subscribers) s.deliver(m);
  }

  private markLost(reason: LibvirtError, shutdownSocket: boolean): void {
    if (shutdownSocket && this.fd !== null) runtime.shutdownSocket(this.fd);
    if (this.lost || this.closedState !== 'open') return;
    this.lost = reason;
    const subs = [...this.subscriptions];
    this.subscriptions.clear();
    this.registrations.clear();
    this.registrationsById.clear();
    for (const s of subs) s.end(reason);
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
