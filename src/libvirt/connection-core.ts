/**
 * The hand-written half of Connection: opening, closing, object lifetime, event streams and the friendly
 * methods libqemu had before the generated layer (listDomains, lookupDomain, …). The generated Connection
 * (src/generated/libvirt/classes.ts) extends it with one method per libvirt function.
 */
import { EventEmitter } from 'node:events';
import { InvalidArgumentError } from '../common/errors.js';
import type { ConnectPtr } from '../../native/libvirt.js';
import { virConnectCloseReasonNames, virConnectDomainQemuMonitorEventRegisterFlags, virConnectListAllDomainsFlags, virDomainCreateFlags } from '../generated/libvirt/enums.js';
import { prepareArgs } from './call-args.js';
import { DomainCore } from './domain-core.js';
import { LibvirtConnectionLostError, LibvirtError, isConnectionLostError } from './errors.js';
import { DOMAIN_EVENT_IDS, NETWORK_EVENT_IDS, NODE_DEVICE_EVENT_IDS, SECRET_EVENT_IDS, STORAGE_POOL_EVENT_IDS } from '../generated/libvirt/event-ids.js';
import { EventRegistry, type EventPayload, type RegistrationSpec } from './event-registry.js';
import {
  type ConnectionGap,
  type DomainEvent,
  type DomainEventKind,
  type DomainEventOptions,
  type EventStream,
  type GenericDomainEvent,
  type ObjectEvent,
  type ObjectEventOptions,
  type QemuMonitorEvent,
  type QemuMonitorEventOptions,
  type SubscriptionOptions,
} from './events.js';
import { Executor, type CallOptions } from './executor.js';
import { LibvirtObject, type LibvirtContext } from './object.js';
import type { EventFamily } from './protocol.js';
import type { ExecOps, OpName } from './ops.js';
import { runtime, type EventCommandInput, type EventListener } from './runtime.js';
import type { ObjectRef } from './spec.js';

export interface OpenOptions {
  /** Open read-only (virConnectOpenReadOnly). */
  readOnly?: boolean;
  /**
   * Deadline for each call once it has started (default 60 000 ms; 0 = none). A call that misses it fails
   * with LibvirtTimeoutError and the connection is shut down, because the native call cannot be cancelled.
   */
  callTimeoutMs?: number;
  /**
   * Re-open the connection when the daemon goes away (restart, crash, network): off by default here, on
   * by default for a Hypervisor. `true` uses the defaults of ReconnectOptions.
   */
  reconnect?: boolean | ReconnectOptions;
}

export interface ReconnectOptions {
  /** First wait before re-opening (default 100 ms); doubled after each failed attempt. */
  initialDelayMs?: number;
  /** The cap on the wait between attempts (default 5 000 ms). */
  maxDelayMs?: number;
  /** Give up this long after the loss (default 120 000 ms): calls and streams then fail for good. */
  giveUpAfterMs?: number;
}

export interface LibvirtVersion {
  major: number;
  minor: number;
  micro: number;
}

/** Domain event kinds with their own event shapes (decoded by hand-written callbacks in the event worker). */
const HAND_DECODED = new Set<string>(['lifecycle', 'reboot', 'migration-iteration', 'job-completed']);

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

let connectionSeq = 0;
/** Idle executor threads kept for the next open (starting a thread costs 30-300 ms). */
const spareExecutors: Executor[] = [];
const MAX_SPARE_EXECUTORS = 2;

/** Object constructors by class name (the generated classes). */
export type ObjectClasses = Readonly<Record<string, new (context: LibvirtContext, ref: ObjectRef) => LibvirtObject>>;

export interface ConnectionEvents {
  /** The connection dropped (daemon gone, keepalive timeout, or a call missed its deadline). */
  disconnected: [reason: LibvirtError | undefined];
  /** The connection was re-opened after a loss (reconnect on); streams yield `gap` with the same times. */
  reconnected: [gap: ConnectionGap];
  /** Reconnection gave up (giveUpAfterMs passed, or close() during it): the connection is closed for good. */
  'reconnect-failed': [error: LibvirtConnectionLostError];
}

/** A native handle this connection handed out, and its stand-in on the current connection after a reconnection. */
interface Handle {
  cls: string;
  ptr: bigint;
  uuid: string | undefined;
  /** The connection generation `ptr` belongs to. */
  gen: number;
  alias?: { ptr: bigint; gen: number } | undefined;
  relookup?: Promise<bigint> | undefined;
}

/** What open() builds (the generated Connection class). */
type ConnectionClass<C> = new (init: ConnectionInit) => C;

/** What the generated Connection is constructed from (Connection.open builds it; not for users). */
export interface ConnectionInit {
  executor: Executor;
  pointer: ConnectPtr;
  uri: string;
  readOnly: boolean;
  fd: number | null;
  callTimeoutMs: number;
  connId: number;
  /** The URI as given to open() (re-opened on reconnection). */
  requestedUri: string | null;
  reconnect: Required<ReconnectOptions> | undefined;
}

/**
 * A connection to a libvirt daemon or driver. Every call runs in this connection's own worker thread,
 * one at a time (libvirt 9.0 mishandles several RPCs in flight on one connection when keepalive fires);
 * callbacks live in the shared event-loop worker. `D` is the Domain class its methods return.
 */
export abstract class ConnectionCore<D extends DomainCore = DomainCore> extends EventEmitter<ConnectionEvents> implements LibvirtContext {
  private closedState: 'open' | 'closing' | 'closed' = 'open';
  private lost: LibvirtError | undefined;
  /** Native handles of the objects this connection handed out, by finalization token. */
  private readonly handles = new Map<object, Handle>();
  /** The same handles by native pointer (to bring arguments from before a reconnection up to date). */
  private readonly byPtr = new Map<bigint, Handle>();
  private readonly finalizer = new FinalizationRegistry<object>((token) => this.releaseHandle(token));
  private readonly events: EventRegistry;
  private readonly unlisten: () => void;
  private closePromise: Promise<void> | undefined;
  private readonly executor: Executor;
  private current: ConnectPtr;
  /** The native pointer of each connection generation (0 = the first open, +1 per reconnection). */
  private readonly pointers: ConnectPtr[] = [];
  private generation = 0;
  private reconnecting: { since: Date; promise: Promise<void>; wake: () => void } | undefined;
  /** Calls waiting for the reconnection (they keep the process alive while it retries). */
  private waiting = 0;
  private readonly requestedUri: string | null;
  private readonly reconnectOptions: Required<ReconnectOptions> | undefined;
  /** The URI libvirt resolved (virConnectGetURI). */
  readonly uri: string;
  readonly readOnly: boolean;
  private fd: number | null;
  private readonly callTimeoutMs: number;
  private connId: number;
  /** The classes objects are built from (set by the generated Connection). */
  protected abstract readonly classes: ObjectClasses;

  /** @internal use Connection.open(). */
  constructor(init: ConnectionInit) {
    super();
    this.executor = init.executor;
    this.current = init.pointer;
    this.pointers.push(init.pointer);
    this.requestedUri = init.requestedUri;
    this.reconnectOptions = init.reconnect;
    this.uri = init.uri;
    this.readOnly = init.readOnly;
    this.fd = init.fd;
    this.callTimeoutMs = init.callTimeoutMs;
    this.connId = init.connId;
    this.events = new EventRegistry(
      this.executor,
      () => this.current,
      () => this.isOpen,
      (cmd) => this.prepareEventCommand(cmd),
    );
    this.unlisten = runtime.addListener((m) => this.onEvent(m));
    this.executor.onStuck = (op) => this.markLost(LibvirtError.timedOut(op), true);
  }

  /** The native handle, for code that binds further libvirt calls (see src/libvirt/ops.ts); a new one after each reconnection. */
  get pointer(): ConnectPtr {
    return this.current;
  }

  /** True while the connection is lost and being re-opened (calls wait, streams stay open). */
  get isReconnecting(): boolean {
    return this.reconnecting !== undefined;
  }

  /** This connection (what an object's getConnect() returns). */
  get connection(): this {
    return this;
  }

  /** @internal a connection is its own call context (the generated methods call through `context`). */
  get context(): this {
    return this;
  }

  /**
   * Opens a connection: `uri` defaults to LIBVIRT_DEFAULT_URI, else libvirt's own default.
   * e.g. `qemu+unix:///session?socket=/tmp/x/run/libvirt/libvirt-sock` or `test:///default`.
   */
  static async open<C extends ConnectionCore>(this: ConnectionClass<C>, uri?: string, options: OpenOptions = {}): Promise<C> {
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
    const reconnect = reconnectSettings(options.reconnect);
    let opened: Awaited<ReturnType<ExecOps['open']>>;
    try {
      opened = await runtime.withOpenLock(() => executor.call('open', [uri ?? process.env.LIBVIRT_DEFAULT_URI ?? null, readOnly], { timeoutMs: callTimeoutMs }));
    } catch (err) {
      recycle(executor);
      throw err;
    }
    const connId = ++connectionSeq;
    const requestedUri = uri ?? process.env.LIBVIRT_DEFAULT_URI ?? null;
    const conn = new this({ executor, pointer: opened.conn, uri: opened.uri, readOnly, fd: opened.fd, callTimeoutMs, connId, requestedUri, reconnect });
    if (opened.fd !== null) runtime.connectionFds.add(opened.fd);
    // Close callback (remote drivers only; others decline): tells us when the daemon goes away.
    await executor.call('registerCloseCallback', [opened.conn, runtime.closeCallback, connId], { timeoutMs: callTimeoutMs }).catch(() => undefined);
    return conn;
  }

  /** True until close() or a disconnect (false while reconnecting). */
  get isOpen(): boolean {
    return this.closedState === 'open' && this.lost === undefined;
  }

  /** Number of native domain handles this connection holds (released on GC of their Domain, or on close). */
  get openDomainHandles(): number {
    let n = 0;
    for (const h of this.handles.values()) if (h.cls === 'Domain') n++;
    return n;
  }

  /** Number of native object handles of every class this connection holds. */
  get openHandles(): number {
    return this.handles.size;
  }

  /** Number of open event streams (domainEvents / qemuMonitorEvents / …). */
  get activeSubscriptions(): number {
    return this.events.subscriptionCount;
  }

  /** Number of callbacks registered in libvirt for them (streams with equal filters share one). */
  get activeEventRegistrations(): number {
    return this.events.registrationCount;
  }

  /** Runs one generated binding (see LibvirtContext.call); the generated methods call it, users call those. */
  call(c: string, tags: string, args: unknown[], options: CallOptions = {}): Promise<unknown> {
    let prepared: unknown[];
    try {
      prepared = prepareArgs(c, tags, args);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.exec('invoke', [c, prepared], options);
  }

  /** @internal Runs one op from src/libvirt/ops.ts on this connection's worker. */
  exec<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, options: CallOptions = {}): Promise<ReturnType<ExecOps[K]>> {
    if (this.closedState !== 'open') return Promise.reject(LibvirtError.closed(op));
    if (this.lost && !this.reconnecting) return Promise.reject(this.lostFor(op));
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(new InvalidArgumentError(`timeoutMs must be ≥ 0, got ${String(options.timeoutMs)}`, { hint: 'use milliseconds; 0 disables the deadline' }));
    }
    // Arguments prepared before a reconnection name the old connection or handles: bring them up to date.
    if (this.reconnecting || this.generation > 0) return this.execAfterReconnect(op, args, timeoutMs, this.generation);
    return this.run(op, args, timeoutMs);
  }

  private run<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, timeoutMs: number): Promise<ReturnType<ExecOps[K]>> {
    const gen = this.generation;
    return this.executor.call(op, args, { timeoutMs }).catch((err: unknown) => {
      if (err instanceof LibvirtError && isConnectionLostError(err.code, err.message)) {
        if (gen === this.generation) this.markLost(err, false);
        if (this.reconnectOptions) throw LibvirtConnectionLostError.from(err);
      }
      throw err;
    });
  }

  /** Waits for a reconnection in progress (up to the call's deadline), then runs the call on the current connection. */
  private async execAfterReconnect<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, timeoutMs: number, entryGen: number): Promise<ReturnType<ExecOps[K]>> {
    const started = performance.now();
    if (this.reconnecting) {
      this.waiting++;
      try {
        await waitFor(this.reconnecting.promise, timeoutMs, () => new LibvirtConnectionLostError({ operation: op, message: `the connection is lost and was not back within the call's deadline (${timeoutMs} ms)` }));
      } finally {
        this.waiting--;
      }
    }
    if (this.closedState !== 'open') throw LibvirtError.closed(op);
    if (this.lost) throw this.lostFor(op);
    const left = timeoutMs === 0 ? 0 : Math.max(1, timeoutMs - (performance.now() - started));
    const fresh = op === 'invoke' ? ([args[0], await this.translate(args[1] as unknown[], entryGen, left)] as unknown as Parameters<ExecOps[K]>) : args;
    return this.run(op, fresh, left);
  }

  /** The error a call gets once the connection is lost for good. */
  private lostFor(op: string): LibvirtError {
    return this.lost instanceof LibvirtConnectionLostError ? this.lost : this.reconnectOptions ? LibvirtConnectionLostError.from(LibvirtError.closed(op, this.lost)) : LibvirtError.closed(op, this.lost);
  }

  /** Replaces pointers of an older connection generation by their stand-ins on the current one. */
  private async translate(args: unknown[], entryGen: number, timeoutMs: number): Promise<unknown[]> {
    const out = [...args];
    for (let i = 0; i < out.length; i++) {
      const v = out[i];
      if (typeof v !== 'bigint') continue;
      if (entryGen < this.generation && v === this.pointers[entryGen]) out[i] = this.current;
      else {
        // usually already known: no microtask per argument on every call after a reconnection
        const current = this.currentHandle(v, timeoutMs);
        out[i] = typeof current === 'bigint' ? current : await current;
      }
    }
    return out;
  }

  /** A handle's pointer on the current connection: looked up again by UUID on first use after a reconnection. */
  private currentHandle(ptr: bigint, timeoutMs: number): Promise<bigint> | bigint {
    const h = this.byPtr.get(ptr);
    if (h === undefined || h.gen === this.generation) return ptr;
    if (h.alias && h.alias.gen === this.generation) return h.alias.ptr;
    if (h.relookup) return h.relookup;
    if (h.cls !== 'Domain' || h.uuid === undefined) {
      throw new LibvirtConnectionLostError({ message: `this ${h.cls} handle belongs to the connection before the reconnection`, hint: `look the ${h.cls} up again on this connection` });
    }
    const gen = this.generation;
    h.relookup = this.run('invoke', ['virDomainLookupByUUIDString', [this.current, h.uuid]], timeoutMs)
      .then((ref) => {
        const old = h.alias;
        h.alias = { ptr: (ref as ObjectRef).ptr, gen };
        if (old) void this.executor.call('release', [h.cls, old.ptr]).catch(() => undefined);
        return h.alias.ptr;
      })
      .finally(() => (h.relookup = undefined));
    return h.relookup;
  }

  private async prepareEventCommand(cmd: EventCommandInput): Promise<EventCommandInput> {
    if (this.generation === 0) return cmd;
    const t = this.callTimeoutMs;
    if ('dom' in cmd && cmd.dom !== null) return { ...cmd, conn: this.current, dom: await this.currentHandle(cmd.dom, t) };
    if ('obj' in cmd && cmd.obj !== null) return { ...cmd, conn: this.current, obj: await this.currentHandle(cmd.obj, t) };
    return { ...cmd, conn: this.current };
  }

  async isAlive(): Promise<boolean> {
    if (!this.isOpen) return false;
    try {
      return (await this.call('virConnectIsAlive', '', [this.pointer])) as boolean;
    } catch {
      return false;
    }
  }

  hostname(options?: CallOptions): Promise<string> {
    return this.call('virConnectGetHostname', '', [this.pointer], options) as Promise<string>;
  }

  /** The libvirt library version on the daemon's side. */
  async libVersion(options?: CallOptions): Promise<LibvirtVersion> {
    return version((await this.call('virConnectGetLibVersion', '', [this.pointer], options)) as number);
  }

  /** The hypervisor's version (for QEMU: QEMU's version). */
  async hypervisorVersion(options?: CallOptions): Promise<LibvirtVersion> {
    return version((await this.call('virConnectGetVersion', '', [this.pointer], options)) as number);
  }

  /** Domains on this connection; by default both running and defined-but-stopped ones. */
  async listDomains(options: { active?: boolean; inactive?: boolean } & CallOptions = {}): Promise<D[]> {
    const active = options.active ?? true;
    const inactive = options.inactive ?? true;
    if (!active && !inactive) return [];
    const flags = active && inactive ? 0 : active ? virConnectListAllDomainsFlags.VIR_CONNECT_LIST_DOMAINS_ACTIVE : virConnectListAllDomainsFlags.VIR_CONNECT_LIST_DOMAINS_INACTIVE;
    const refs = (await this.exec('invoke', ['virConnectListAllDomains', [this.pointer, flags]], options)) as ObjectRef[];
    return refs.map((r) => this.adoptDomain(r));
  }

  /** Looks a domain up by name, or by UUID when given one. Fails with VIR_ERR_NO_DOMAIN when there is none. */
  async lookupDomain(nameOrUuid: string, options?: CallOptions): Promise<D> {
    if (typeof nameOrUuid !== 'string' || nameOrUuid === '') {
      throw new InvalidArgumentError(`lookupDomain expects a domain name or UUID, got ${JSON.stringify(nameOrUuid)}`, { hint: 'pass the name shown by listDomains()' });
    }
    const c = UUID_RE.test(nameOrUuid) ? 'virDomainLookupByUUIDString' : 'virDomainLookupByName';
    return this.adoptDomain((await this.exec('invoke', [c, [this.pointer, nameOrUuid]], options)) as ObjectRef);
  }

  async lookupDomainById(id: number, options?: CallOptions): Promise<D> {
    if (!Number.isInteger(id) || id < 0) {
      throw new InvalidArgumentError(`lookupDomainById expects a non-negative integer, got ${String(id)}`, { hint: 'running domains have ids; see dom.id()' });
    }
    return this.adoptDomain((await this.exec('invoke', ['virDomainLookupByID', [this.pointer, id]], options)) as ObjectRef);
  }

  /** Defines (or redefines) a persistent domain from XML; it is not started. */
  async defineXML(xml: string, options?: CallOptions): Promise<D> {
    checkXml('defineXML', xml);
    return this.adoptDomain((await this.exec('invoke', ['virDomainDefineXML', [this.pointer, xml]], options)) as ObjectRef);
  }

  /** Creates and starts a transient domain from XML (gone once it stops). */
  async createXML(xml: string, options: { paused?: boolean } & CallOptions = {}): Promise<D> {
    checkXml('createXML', xml);
    return this.adoptDomain((await this.exec('invoke', ['virDomainCreateXML', [this.pointer, xml, options.paused ? virDomainCreateFlags.VIR_DOMAIN_START_PAUSED : 0]], options)) as ObjectRef);
  }

  /** Lifecycle and reboot events, filtered by libvirt (domain) and by kind; deregistered when the iteration stops. */
  domainEvents(options?: DomainEventOptions & { kinds?: DomainEventKind[] }): EventStream<DomainEvent | ConnectionGap>;
  domainEvents(options: DomainEventOptions): EventStream<DomainEvent | GenericDomainEvent | ConnectionGap>;
  domainEvents(options: DomainEventOptions = {}): EventStream<DomainEvent | ConnectionGap> | EventStream<DomainEvent | GenericDomainEvent | ConnectionGap> {
    const kinds = options.kinds ?? ['lifecycle', 'reboot'];
    for (const k of kinds) {
      if (!Object.hasOwn(DOMAIN_EVENT_IDS, k)) {
        throw new InvalidArgumentError(`domainEvents: unknown kind ${JSON.stringify(k)}`, { hint: `kinds are libvirt's domain event ids: ${Object.keys(DOMAIN_EVENT_IDS).join(', ')}` });
      }
    }
    this.checkDomain(options.domain);
    const dom = options.domain?.pointer ?? null;
    const target = options.domain?.uuid ?? '*';
    return this.subscribe<DomainEvent | GenericDomainEvent>(
      options,
      'libvirt domain events',
      [...new Set(kinds)].map((kind): RegistrationSpec =>
        HAND_DECODED.has(kind)
          ? { key: `domain:${kind}:${target}`, kind: 'domain', command: (sub) => ({ cmd: 'register', conn: this.pointer, kind: kind as Exclude<DomainEventKind, 'agent-lifecycle'>, dom, sub }) }
          : {
              key: `domain:${kind}:${target}`,
              kind: 'object',
              family: 'domain',
              command: (sub) => ({ cmd: 'registerObject', conn: this.pointer, family: 'domain', obj: dom, eventId: DOMAIN_EVENT_IDS[kind], sub }),
            },
      ),
    );
  }

  /** Network events (virConnectNetworkEventRegisterAny): every virNetworkEventID, for one network or all. */
  networkEvents(options: ObjectEventOptions = {}): EventStream<ObjectEvent | ConnectionGap> {
    return this.objectEvents('network', NETWORK_EVENT_IDS, options);
  }

  /** Storage pool events (virConnectStoragePoolEventRegisterAny): lifecycle and refresh. */
  storagePoolEvents(options: ObjectEventOptions = {}): EventStream<ObjectEvent | ConnectionGap> {
    return this.objectEvents('storagePool', STORAGE_POOL_EVENT_IDS, options);
  }

  /** Node device events (virConnectNodeDeviceEventRegisterAny): lifecycle and update. */
  nodeDeviceEvents(options: ObjectEventOptions = {}): EventStream<ObjectEvent | ConnectionGap> {
    return this.objectEvents('nodeDevice', NODE_DEVICE_EVENT_IDS, options);
  }

  /** Secret events (virConnectSecretEventRegisterAny): lifecycle and value-changed. */
  secretEvents(options: ObjectEventOptions = {}): EventStream<ObjectEvent | ConnectionGap> {
    return this.objectEvents('secret', SECRET_EVENT_IDS, options);
  }

  private objectEvents(family: EventFamily, ids: Readonly<Record<string, number>>, options: ObjectEventOptions): EventStream<ObjectEvent | ConnectionGap> {
    const kinds = options.kinds ?? Object.keys(ids);
    for (const k of kinds) {
      if (!Object.hasOwn(ids, k)) throw new InvalidArgumentError(`${family}Events: unknown kind ${JSON.stringify(k)}`, { hint: `kinds are ${Object.keys(ids).join(', ')}` });
    }
    if (options.object !== undefined && (!(options.object instanceof LibvirtObject) || options.object.context !== this)) {
      throw new InvalidArgumentError(`${family}Events: the object filter must be an object from this same connection`, { hint: 'look it up on this connection first' });
    }
    const obj = options.object?.pointer ?? null;
    const target = options.object?.uuid ?? options.object?.name ?? (obj === null ? '*' : String(obj));
    return this.subscribe<ObjectEvent>(
      options,
      `libvirt ${family} events`,
      [...new Set(kinds)].map((kind) => ({
        key: `${family}:${kind}:${target}`,
        kind: 'object',
        family,
        command: (sub) => ({ cmd: 'registerObject', conn: this.pointer, family, obj, eventId: ids[kind]!, sub }),
      })),
    );
  }

  /** QEMU monitor events (virConnectDomainQemuMonitorEventRegister), filtered by libvirt by domain and event name/regex. */
  qemuMonitorEvents(options: QemuMonitorEventOptions = {}): EventStream<QemuMonitorEvent | ConnectionGap> {
    if (options.event !== undefined && (typeof options.event !== 'string' || options.event === '')) {
      throw new InvalidArgumentError('qemuMonitorEvents: event must be a non-empty string', { hint: "e.g. 'STOP', or '^(STOP|RESUME)$' with regex: true" });
    }
    this.checkDomain(options.domain);
    const flags =
      (options.regex ? virConnectDomainQemuMonitorEventRegisterFlags.VIR_CONNECT_DOMAIN_QEMU_MONITOR_EVENT_REGISTER_REGEX : 0) | (options.nocase ? virConnectDomainQemuMonitorEventRegisterFlags.VIR_CONNECT_DOMAIN_QEMU_MONITOR_EVENT_REGISTER_NOCASE : 0);
    const event = options.event ?? null;
    // libvirt 9.0's remote driver forwards only the first registration per connection that names a domain
    // but no event: the second guest's events never arrive. So an unfiltered per-domain stream shares the
    // one connection-wide registration (domain NULL, which delivers every guest's events), and the
    // domain filter is applied here. Registrations with an event name are filtered by libvirt itself.
    const wide = options.domain !== undefined && event === null;
    const dom = wide ? null : (options.domain?.pointer ?? null);
    const key = `qemu:${wide ? '*' : (options.domain?.uuid ?? '*')}:${flags}:${event === null ? '*' : JSON.stringify(event)}`;
    const uuid = options.domain?.uuid;
    const accept = wide ? (m: EventPayload) => 'uuid' in m && m.uuid === uuid : undefined;
    return this.events.subscribe<QemuMonitorEvent | ConnectionGap>(
      options,
      'QEMU monitor events',
      [{ key, kind: 'qemu', command: (sub) => ({ cmd: 'registerQemu', conn: this.pointer, dom, event, flags, sub }) }],
      () => LibvirtError.closed(),
      accept,
    );
  }

  /** Deregisters events, releases every domain handle and closes the connection. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closedState = 'closing';
    if (this.reconnecting) {
      // Stops the retries; an open in progress returns promptly (the daemon answers or refuses).
      this.reconnecting.wake();
      await this.reconnecting.promise.catch(() => undefined);
    }
    const wasLost = this.lost !== undefined;
    // After every queued (de)registration: they all run before the close.
    await this.events.close(!wasLost);
    const ptrs: { cls: string; ptr: bigint }[] = [];
    for (const h of this.handles.values()) {
      ptrs.push({ cls: h.cls, ptr: h.ptr });
      if (h.alias) ptrs.push({ cls: h.cls, ptr: h.alias.ptr });
    }
    for (const token of this.handles.keys()) this.finalizer.unregister(token);
    this.handles.clear();
    this.byPtr.clear();
    try {
      await this.executor.call('close', [this.current, ptrs, runtime.closeCallback], { timeoutMs: wasLost ? Math.min(this.callTimeoutMs || 1000, 1000) : this.callTimeoutMs });
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

  private checkDomain(domain: DomainCore | undefined): void {
    if (domain !== undefined && (!(domain instanceof DomainCore) || domain.context !== this)) {
      throw new InvalidArgumentError('the domain filter must be a Domain from this same connection', { hint: 'look the domain up on this connection first' });
    }
  }

  /** @internal Opens a stream served by the registrations `specs` describe. */
  protected subscribe<T>(options: SubscriptionOptions, what: string, specs: RegistrationSpec[]): EventStream<T | ConnectionGap> {
    return this.events.subscribe<T | ConnectionGap>(options, what, specs, () => LibvirtError.closed());
  }

  private onEvent(m: Parameters<EventListener>[0]): void {
    if (m.k === 'closed') {
      if (m.connId === this.connId && this.closedState === 'open') {
        const reason = virConnectCloseReasonNames[m.reason]?.replace('VIR_CONNECT_CLOSE_REASON_', '').toLowerCase() ?? `reason ${m.reason}`;
        this.markLost(LibvirtError.disconnected(reason), false);
      }
      return;
    }
    this.events.deliver(m);
  }

  private markLost(reason: LibvirtError, shutdownSocket: boolean): void {
    if (shutdownSocket && this.fd !== null) runtime.shutdownSocket(this.fd);
    if (this.lost || this.closedState !== 'open') return;
    this.lost = reason;
    if (!this.reconnectOptions) {
      this.events.endAll(reason);
      this.emit('disconnected', reason);
      return;
    }
    this.events.suspend();
    const since = new Date();
    let wake = (): void => {};
    const promise = this.reconnectLoop(since, this.reconnectOptions, (fn) => (wake = fn));
    this.reconnecting = { since, promise, wake: () => wake() };
    promise.catch(() => undefined);
    this.emit('disconnected', reason);
  }

  /** Re-opens the same URI on this connection's executor, with capped exponential backoff, until giveUpAfterMs. */
  private async reconnectLoop(since: Date, o: Required<ReconnectOptions>, onWake: (fn: () => void) => void): Promise<void> {
    const giveUpAt = since.getTime() + o.giveUpAfterMs;
    let delay = o.initialDelayMs;
    let lastError: unknown = this.lost;
    try {
      for (;;) {
        const wait = Math.min(delay, Math.max(0, giveUpAt - Date.now()));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          // Only calls waiting for the reconnection hold the process; open streams hold it themselves.
          if (this.waiting === 0) timer.unref();
          onWake(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        if (this.closedState !== 'open') throw LibvirtError.closed(undefined, undefined, 'the connection was closed while reconnecting');
        try {
          const opened = await runtime.withOpenLock(() => this.executor.call('open', [this.requestedUri, this.readOnly], { timeoutMs: this.callTimeoutMs || 30_000 }));
          this.swapIn(opened);
          break;
        } catch (err) {
          if (this.closedState !== 'open') throw err;
          lastError = err;
          if (Date.now() >= giveUpAt) throw err;
          delay = Math.min(delay * 2, o.maxDelayMs);
        }
      }
    } catch (err) {
      const gaveUp = new LibvirtConnectionLostError({
        message: this.closedState === 'open' ? `the daemon did not come back within ${o.giveUpAfterMs} ms (reconnect.giveUpAfterMs)` : 'the connection was closed while reconnecting',
        cause: lastError ?? err,
        hint: 'check that libvirtd is running, then open a new Connection (or raise reconnect.giveUpAfterMs)',
      });
      this.lost = gaveUp;
      this.reconnecting = undefined;
      this.events.endAll(gaveUp);
      if (this.closedState === 'open') this.emit('reconnect-failed', gaveUp);
      throw gaveUp;
    }
    const gap: ConnectionGap = { kind: 'gap', since, until: new Date() };
    this.lost = undefined;
    this.reconnecting = undefined;
    // Every subscription again on the new connection; a stream whose registration fails ends with that error.
    await this.events.resume(gap);
    this.emit('reconnected', gap);
  }

  /** Makes a freshly opened connection the current one and frees the old one (after the calls queued on it). */
  private swapIn(opened: { conn: ConnectPtr; fd: number | null }): void {
    const old = this.current;
    if (this.fd !== null) runtime.connectionFds.delete(this.fd);
    this.current = opened.conn;
    this.fd = opened.fd;
    if (opened.fd !== null) runtime.connectionFds.add(opened.fd);
    this.generation++;
    this.pointers.push(opened.conn);
    this.connId = ++connectionSeq;
    // Domain handles of the old connection keep it allocated until they are released; nothing else uses it.
    // No deadline: a missed one would shut down the socket of the new connection (the executor's stuck hook).
    void this.executor.call('close', [old, [], runtime.closeCallback], { timeoutMs: 0 }).catch(() => undefined);
    void this.executor.call('registerCloseCallback', [opened.conn, runtime.closeCallback, this.connId], { timeoutMs: this.callTimeoutMs }).catch(() => undefined);
  }

  /** Wraps a reference from the worker in an object, released when unreferenced or on close() (see LibvirtContext.adopt). */
  adopt(cls: string, ref: ObjectRef): LibvirtObject {
    const Ctor = this.classes[cls];
    if (!Ctor) throw new Error(`no class ${cls}`);
    if (this.closedState !== 'open') {
      // Closed while the call was in flight: do not leak the handle.
      void this.executor.call('release', [cls, ref.ptr]).catch(() => undefined);
      throw LibvirtError.closed(undefined, undefined, 'the connection was closed during the call');
    }
    const obj = new Ctor(this, ref);
    const token = {};
    const h: Handle = { cls, ptr: ref.ptr, uuid: ref.uuid, gen: this.generation };
    this.handles.set(token, h);
    this.byPtr.set(ref.ptr, h);
    this.finalizer.register(obj, token, token);
    return obj;
  }

  private adoptDomain(ref: ObjectRef): D {
    return this.adopt('Domain', ref) as D;
  }

  private releaseHandle(token: object): void {
    const h = this.handles.get(token);
    if (h === undefined) return;
    this.handles.delete(token);
    if (this.byPtr.get(h.ptr) === h) this.byPtr.delete(h.ptr);
    if (this.closedState === 'closed') return;
    void this.executor.call('release', [h.cls, h.ptr]).catch(() => undefined);
    if (h.alias) void this.executor.call('release', [h.cls, h.alias.ptr]).catch(() => undefined);
  }
}

/** libvirt's version numbers: major * 1,000,000 + minor * 1,000 + micro. */
function version(v: number): LibvirtVersion {
  return { major: Math.floor(v / 1_000_000), minor: Math.floor(v / 1000) % 1000, micro: v % 1000 };
}

function checkXml(what: string, xml: unknown): void {
  if (typeof xml !== 'string' || !xml.trimStart().startsWith('<')) {
    throw new InvalidArgumentError(`${what} expects domain XML, got ${typeof xml === 'string' ? JSON.stringify(xml.slice(0, 60)) : typeof xml}`, {
      hint: 'pass a <domain type=…>…</domain> document (see tinyGuestXml() in libqemu/testing for a minimal one)',
    });
  }
}

function reconnectSettings(r: OpenOptions['reconnect']): Required<ReconnectOptions> | undefined {
  if (r === undefined || r === false) return undefined;
  if (r !== true && (r === null || typeof r !== 'object')) throw new InvalidArgumentError('reconnect must be true, false or { initialDelayMs, maxDelayMs, giveUpAfterMs }');
  const o = r === true ? {} : r;
  const settings = { initialDelayMs: o.initialDelayMs ?? 100, maxDelayMs: o.maxDelayMs ?? 5000, giveUpAfterMs: o.giveUpAfterMs ?? 120_000 };
  for (const [k, v] of Object.entries(settings)) {
    if (!Number.isFinite(v) || v < 0) throw new InvalidArgumentError(`reconnect.${k} must be a number of milliseconds ≥ 0, got ${String(v)}`);
  }
  if (settings.initialDelayMs === 0) settings.initialDelayMs = 1;
  return settings;
}

/** Settles with `p`, or rejects with `timeout()` after `ms` (0: no deadline). */
function waitFor<T>(p: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  if (ms === 0) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeout()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function recycle(executor: Executor): void {
  if (!executor.isDead && !executor.busy && spareExecutors.length < MAX_SPARE_EXECUTORS) {
    executor.onStuck = undefined;
    spareExecutors.push(executor);
  } else {
    void executor.terminate();
  }
}
