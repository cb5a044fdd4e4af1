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
import { LibvirtConnectionLostError, LibvirtError, LibvirtTimeoutError, isConnectionLostError } from './errors.js';
import { DOMAIN_EVENT_IDS, NETWORK_EVENT_IDS, NODE_DEVICE_EVENT_IDS, SECRET_EVENT_IDS, STORAGE_POOL_EVENT_IDS } from '../generated/libvirt/event-ids.js';
import { EventRegistry, type EventPayload, type RegistrationSpec } from './event-registry.js';
import { Lane, LanePool, type LaneWant } from './lanes.js';
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
   * with LibvirtTimeoutError; the native call cannot be cancelled, so its lane (one libvirt connection)
   * is retired and replaced while the other lanes go on serving.
   */
  callTimeoutMs?: number;
  /**
   * Most libvirt connections ("lanes", each on its own worker thread) this connection spreads its calls
   * over (default 4; 1 runs every call in order on one connection). Lanes open when calls wait for one;
   * a lane carries one call at a time, so a call stuck on a hung guest holds one lane, not all.
   */
  lanes?: number;
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
  /** A call missed its deadline: the lane it ran on was retired (the others go on; a new one opens when needed). */
  'lane-retired': [info: { operation: string; openLanes: number }];
}

/** A native handle this connection handed out: where it lives, and its stand-ins on other lanes. */
interface Handle {
  cls: string;
  /** The pointer the object carries (valid on `home`'s connection). */
  ptr: bigint;
  uuid: string | undefined;
  /** The lane whose connection returned it. */
  home: Lane;
  /** The same object looked up (by UUID) on other lanes; freed with the lane. */
  copies: Map<Lane, bigint>;
  lookups: Map<Lane, Promise<bigint>>;
}

/** Classes an object of which can be found again on another lane (or after a reconnection) by its UUID. */
const LOOKUP_BY_UUID: Readonly<Record<string, string>> = {
  Domain: 'virDomainLookupByUUIDString',
  Network: 'virNetworkLookupByUUIDString',
  StoragePool: 'virStoragePoolLookupByUUIDString',
  Secret: 'virSecretLookupByUUIDString',
  NWFilter: 'virNWFilterLookupByUUIDString',
};

/** What open() builds (the generated Connection class). */
type ConnectionClass<C> = new (init: ConnectionInit) => C;

/** What the generated Connection is constructed from (Connection.open builds it; not for users). */
/** A libvirt connection reserved whole for one holder (see ConnectionCore.reserveLane). */
export interface ReservedLane {
  /** libvirt's connection: usable from any thread, by one call at a time. */
  readonly conn: ConnectPtr;
  /** Its socket (null for in-process drivers), shut down to release a stuck call. */
  readonly fd: number | null;
  /** Closes it (after the holder freed what it looked up there). Idempotent. */
  release(): Promise<void>;
}

export interface ConnectionInit {
  /** The first lane, opened by open(). */
  lane: Lane;
  uri: string;
  readOnly: boolean;
  callTimeoutMs: number;
  lanes: number;
  /** The URI as given to open() (re-opened for more lanes and on reconnection). */
  requestedUri: string | null;
  reconnect: Required<ReconnectOptions> | undefined;
}

/**
 * A connection to a libvirt daemon or driver. Its calls run on "lanes": up to `lanes` libvirt connections
 * to the same URI, each on its own worker thread and each carrying one call at a time (libvirt 9.0
 * mishandles several RPCs in flight on one connection when keepalive fires). Objects are found again
 * by UUID on whichever lane serves a call; callbacks live in the shared event-loop worker and are
 * registered on the primary lane. `D` is the Domain class its methods return.
 */
export abstract class ConnectionCore<D extends DomainCore = DomainCore> extends EventEmitter<ConnectionEvents> implements LibvirtContext {
  private closedState: 'open' | 'closing' | 'closed' = 'open';
  private lost: LibvirtError | undefined;
  /** Native handles of the objects this connection handed out, by finalization token. */
  private readonly handles = new Map<object, Handle>();
  /** The same handles by the pointer their object carries. */
  private readonly byPtr = new Map<bigint, Handle>();
  /** Lanes that returned an object reference not yet wrapped by adopt(). */
  private readonly unadopted = new Map<bigint, Lane>();
  private readonly finalizer = new FinalizationRegistry<object>((token) => this.releaseHandle(token));
  private readonly events: EventRegistry;
  private readonly unlisten: () => void;
  private closePromise: Promise<void> | undefined;
  private readonly pool: LanePool;
  /** Every connection pointer a lane ever had (callers pass `connection.pointer`; it is swapped per lane). */
  private readonly connPointers = new Set<bigint>();
  /** Open lanes by close-callback id. */
  private readonly lanesById = new Map<number, Lane>();
  /** Retired lanes whose worker has not finished yet. */
  private readonly retiring = new Set<Lane>();
  /** Lanes handed out whole by reserveLane(), with what their holder is told when they go. */
  private readonly reserved = new Map<Lane, (reason: LibvirtError) => void>();
  /** The pointer callers see: the first lane's, then the primary's after a reconnection. */
  private identity: ConnectPtr;
  /** +1 per reconnection: a lane opened for an older generation is closed, not added. */
  private generation = 0;
  private reconnecting: { since: Date; promise: Promise<void>; wake: () => void } | undefined;
  /** Calls waiting for the reconnection (they keep the process alive while it retries). */
  private waiting = 0;
  private readonly requestedUri: string | null;
  private readonly reconnectOptions: Required<ReconnectOptions> | undefined;
  /** The URI libvirt resolved (virConnectGetURI). */
  readonly uri: string;
  readonly readOnly: boolean;
  private readonly callTimeoutMs: number;
  /** Most lanes this connection opens (the `lanes` option). */
  readonly maxLanes: number;
  /** The classes objects are built from (set by the generated Connection). */
  protected abstract readonly classes: ObjectClasses;

  /** @internal use Connection.open(). */
  constructor(init: ConnectionInit) {
    super();
    this.requestedUri = init.requestedUri;
    this.reconnectOptions = init.reconnect;
    this.uri = init.uri;
    this.readOnly = init.readOnly;
    this.callTimeoutMs = init.callTimeoutMs;
    this.maxLanes = init.lanes;
    this.identity = init.lane.conn;
    this.pool = new LanePool({
      max: init.lanes,
      open: () => this.openLane(),
      onOpenFailed: () => undefined, // the calls waiting are served by the lanes that are open
      laneGone: (lane) => this.laneGone(lane),
    });
    this.adoptLane(init.lane);
    this.pool.add(init.lane);
    this.events = new EventRegistry(this);
    this.unlisten = runtime.addListener((m) => this.onEvent(m));
  }

  /** The native handle, for code that binds further libvirt calls (see src/libvirt/ops.ts); swapped per lane when passed to a call. */
  get pointer(): ConnectPtr {
    return this.identity;
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

  /** Number of libvirt connections (lanes) open now; they open on demand, up to `maxLanes`. */
  get openLanes(): number {
    return this.pool.lanes.length;
  }

  /**
   * @internal test hook: the most native calls ever in flight at once on one libvirt connection of this
   * Connection, counted by the worker threads themselves (executor and event registrations).
   */
  get maxCallsInFlightPerLibvirtConnection(): number {
    let max = 0;
    for (const lane of [...this.pool.lanes, ...this.retiring]) max = Math.max(max, lane.executor.maxConcurrentNativeCalls);
    return Math.max(max, this.retiredMax);
  }
  private retiredMax = 0;

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
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Connection.open: options must be an object');
    const callTimeoutMs = options.callTimeoutMs ?? 60_000;
    if (!Number.isFinite(callTimeoutMs) || callTimeoutMs < 0) {
      throw new InvalidArgumentError(`Connection.open: callTimeoutMs must be ≥ 0, got ${String(callTimeoutMs)}`, { hint: 'use milliseconds; 0 disables the deadline' });
    }
    const lanes = options.lanes ?? DEFAULT_LANES;
    if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) {
      throw new InvalidArgumentError(`Connection.open: lanes must be an integer from 1 to ${MAX_LANES}, got ${String(options.lanes)}`, {
        hint: `each lane is one libvirt connection and one worker thread; the default is ${DEFAULT_LANES}, 1 runs every call in order on one connection`,
      });
    }
    const readOnly = options.readOnly ?? false;
    const reconnect = reconnectSettings(options.reconnect);
    const requestedUri = uri ?? process.env.LIBVIRT_DEFAULT_URI ?? null;
    const { lane, uri: resolved } = await openLane(requestedUri, readOnly, callTimeoutMs);
    return new this({ lane, uri: resolved, readOnly, callTimeoutMs, lanes, requestedUri, reconnect });
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

  /** @internal Runs one op from src/libvirt/ops.ts on a free lane. */
  exec<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, options: CallOptions = {}): Promise<ReturnType<ExecOps[K]>> {
    if (this.closedState !== 'open') return Promise.reject(LibvirtError.closed(op));
    if (this.lost && !this.reconnecting) return Promise.reject(this.lostFor(op));
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
    if (timeoutMs !== this.callTimeoutMs && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      return Promise.reject(new InvalidArgumentError(`timeoutMs must be ≥ 0, got ${String(options.timeoutMs)}`, { hint: 'use milliseconds; 0 disables the deadline' }));
    }
    const native = op === 'invoke' ? (args[1] as unknown[]) : args;
    let want: LaneWant;
    try {
      want = this.laneFor(native);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.reconnecting) return this.afterReconnect(op, args, native, timeoutMs);
    return this.runOn(want, op, args, native, timeoutMs) as Promise<ReturnType<ExecOps[K]>>;
  }

  /** Waits for a reconnection in progress (up to the call's deadline), then runs the call. */
  private async afterReconnect<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, native: unknown[], timeoutMs: number): Promise<ReturnType<ExecOps[K]>> {
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
    return this.runOn(this.laneFor(native), op, args, native, left) as Promise<ReturnType<ExecOps[K]>>;
  }

  /** Runs a call on a lane: its pointers swapped for that lane's, objects it returns recorded as living there. */
  private runOn(want: LaneWant, op: OpName, args: unknown[], native: unknown[], timeoutMs: number): Promise<unknown> {
    // The common case (a free lane, nothing to look up) without an async frame: one promise per call.
    const free = this.pool.tryAcquire(want);
    if (free) {
      const onLane = this.argsOn(free, native, timeoutMs);
      if (Array.isArray(onLane)) {
        // One derived promise: the reply settles it, the lane is released, nothing else is chained.
        return free.executor.call(op, (op === 'invoke' ? (onLane === native ? args : [args[0], onLane]) : onLane) as never, { timeoutMs }).then(
          (value) => {
            this.pool.release(free);
            if (op === 'invoke') this.noteRefs(value, free);
            return value;
          },
          (err: unknown) => {
            const e = this.callFailed(free, err);
            this.pool.release(free);
            throw e;
          },
        );
      }
      return this.finishOn(free, op, args, onLane, timeoutMs);
    }
    return this.pool.acquire(want).then((lane) => this.finishOn(lane, op, args, this.argsOn(lane, native, timeoutMs), timeoutMs));
  }

  /** The rest of a call on a lane it holds: its pointers (being) swapped, the call, the lane released. */
  private async finishOn(lane: Lane, op: OpName, args: unknown[], onLane: unknown[] | Promise<unknown[]>, timeoutMs: number): Promise<unknown> {
    try {
      const laneArgs = Array.isArray(onLane) ? onLane : await onLane;
      const value = await this.callOn(lane, op, op === 'invoke' ? [args[0], laneArgs] : laneArgs, timeoutMs);
      if (op === 'invoke') this.noteRefs(value, lane);
      return value;
    } finally {
      this.pool.release(lane);
    }
  }

  /** One op on one lane's worker; a lost daemon connection starts the reconnection. */
  private callOn(lane: Lane, op: OpName, args: unknown[], timeoutMs: number): Promise<unknown> {
    return lane.executor.call(op, args as never, { timeoutMs }).catch((err: unknown) => {
      throw this.callFailed(lane, err);
    });
  }

  /** The error a failed call on `lane` rejects with; a lost daemon connection starts the reconnection. */
  private callFailed(lane: Lane, err: unknown): unknown {
    if (err instanceof LibvirtError && !(err instanceof LibvirtTimeoutError) && isConnectionLostError(err.code, err.message)) {
      if (!lane.retired) this.markLost(err);
      if (this.reconnectOptions) return LibvirtConnectionLostError.from(err);
    }
    return err;
  }

  /** The lane a call must run on: that of an object which cannot be found again elsewhere, else any. */
  private laneFor(args: unknown[]): LaneWant {
    let want: LaneWant = 'any';
    for (const v of args) {
      if (typeof v === 'bigint') want = this.laneOf(v, want);
      else if (Array.isArray(v)) for (const x of v) if (typeof x === 'bigint') want = this.laneOf(x, want);
    }
    return want;
  }

  /** `want`, narrowed to the lane of the object `ptr` names if that object cannot be found again elsewhere. */
  private laneOf(ptr: bigint, want: LaneWant): LaneWant {
    const h = this.byPtr.get(ptr);
    if (h === undefined || (LOOKUP_BY_UUID[h.cls] !== undefined && h.uuid !== undefined)) return want;
    if (h.home.retired) throw this.laneGone(h.home);
    if (want instanceof Lane && want !== h.home) {
      throw new InvalidArgumentError(`this call names a ${h.cls} and another object that live on different libvirt connections of this Connection`, { hint: `look the ${h.cls} up again right before the call` });
    }
    return h.home;
  }

  /** The arguments with every connection and object pointer replaced by its stand-in on `lane`. */
  private argsOn(lane: Lane, args: unknown[], timeoutMs: number): unknown[] | Promise<unknown[]> {
    if (!this.needsSwap(lane, args)) return args;
    let out: unknown[] | undefined;
    let pending: Promise<void>[] | undefined;
    const swap = (v: unknown, set: (x: unknown) => void): void => {
      if (typeof v !== 'bigint') return;
      if (this.connPointers.has(v)) {
        if (v !== lane.conn) set(lane.conn);
        return;
      }
      const h = this.byPtr.get(v);
      if (h === undefined || h.home === lane) return;
      const copy = h.copies.get(lane);
      if (copy !== undefined) set(copy);
      else (pending ??= []).push(this.copyOn(lane, h, timeoutMs).then(set));
    };
    args.forEach((v, i) => {
      if (Array.isArray(v)) {
        v.forEach((x, j) =>
          swap(x, (y) => {
            out ??= [...args];
            if (out[i] === v) out[i] = [...v];
            (out[i] as unknown[])[j] = y;
          }),
        );
      } else {
        swap(v, (y) => {
          out ??= [...args];
          out[i] = y;
        });
      }
    });
    if (pending === undefined) return out ?? args;
    return Promise.all(pending).then(() => out ?? args);
  }

  /** Whether some pointer in `args` stands for an object (or the connection) not of `lane` (most calls: none). */
  private needsSwap(lane: Lane, args: unknown[]): boolean {
    for (const v of args) {
      if (typeof v === 'bigint') {
        if (this.foreignTo(lane, v)) return true;
      } else if (Array.isArray(v)) {
        for (const x of v) if (typeof x === 'bigint' && this.foreignTo(lane, x)) return true;
      }
    }
    return false;
  }

  private foreignTo(lane: Lane, ptr: bigint): boolean {
    if (ptr === lane.conn) return false;
    if (this.connPointers.has(ptr)) return true;
    const h = this.byPtr.get(ptr);
    return h !== undefined && h.home !== lane;
  }

  /** The object `h` on `lane`, looked up by UUID on that lane (which the caller holds) on first use. */
  private copyOn(lane: Lane, h: Handle, timeoutMs: number): Promise<bigint> {
    let p = h.lookups.get(lane);
    if (p) return p;
    const fn = LOOKUP_BY_UUID[h.cls];
    if (fn === undefined || h.uuid === undefined) return Promise.reject(this.laneGone(h.home));
    p = this.callOn(lane, 'invoke', [fn, [lane.conn, h.uuid]], timeoutMs)
      .then((ref) => {
        const ptr = (ref as ObjectRef).ptr;
        // the lane went, or the object was released meanwhile: the copy is nobody's
        if (lane.retired || this.byPtr.get(h.ptr) !== h) {
          void lane.executor.call('release', [h.cls, ptr]).catch(() => undefined);
          throw this.laneGone(lane);
        }
        h.copies.set(lane, ptr);
        lane.copies.set(ptr, h.cls);
        return ptr;
      })
      .finally(() => h.lookups.delete(lane));
    h.lookups.set(lane, p);
    return p;
  }

  /** Records which lane returned each object reference in a call's result, for adopt(). */
  private noteRefs(value: unknown, lane: Lane, depth = 0): void {
    if (value === null || typeof value !== 'object' || depth > 2) return;
    if (Array.isArray(value)) {
      for (const v of value) this.noteRefs(v, lane, depth + 1);
      return;
    }
    const ptr = (value as { ptr?: unknown }).ptr;
    if (typeof ptr === 'bigint') {
      this.unadopted.set(ptr, lane);
      return;
    }
    for (const v of Object.values(value)) if (v !== null && typeof v === 'object') this.noteRefs(v, lane, depth + 1);
  }

  /** The error for a call naming an object whose lane is gone (and that cannot be found again by UUID). */
  private laneGone(lane: Lane): LibvirtConnectionLostError {
    const why = lane.generation === this.generation ? 'lives on a libvirt connection of this Connection that was retired after a call on it missed its deadline' : 'belongs to the connection before the reconnection';
    return new LibvirtConnectionLostError({ message: `an object of this call ${why}`, hint: 'look the object up again on this connection' });
  }

  /** The error a call gets once the connection is lost for good. */
  private lostFor(op: string): LibvirtError {
    return this.lost instanceof LibvirtConnectionLostError ? this.lost : this.reconnectOptions ? LibvirtConnectionLostError.from(LibvirtError.closed(op, this.lost)) : LibvirtError.closed(op, this.lost);
  }

  /**
   * @internal Runs `fn` holding the primary lane, so that no call is in flight on it meanwhile: event
   * registrations are RPCs on that libvirt connection, made from the event worker. `prepare` swaps a
   * command's pointers for the primary lane's (looking objects up there on first use).
   */
  async exclusive<T>(fn: (prepare: (cmd: EventCommandInput) => Promise<EventCommandInput>) => Promise<T>): Promise<T> {
    // No lane will come back: closed, or lost for good.
    if (this.pool.primary === undefined && (this.closedState !== 'open' || (this.lost !== undefined && !this.reconnecting))) throw this.lostFor('an event registration');
    const lane = await this.pool.acquire('primary');
    try {
      return await fn(async (cmd) => {
        const t = this.callTimeoutMs;
        const swap = async (ptr: bigint | null): Promise<bigint | null> => {
          if (ptr === null) return null;
          const r = this.argsOn(lane, [ptr], t);
          return ((Array.isArray(r) ? r : await r)[0] as bigint);
        };
        const probe = lane.executor.probe;
        if ('dom' in cmd) return { ...cmd, conn: lane.conn, dom: await swap(cmd.dom), probe };
        if ('obj' in cmd) return { ...cmd, conn: lane.conn, obj: await swap(cmd.obj), probe };
        return { ...cmd, conn: lane.conn, probe };
      });
    } finally {
      this.pool.release(lane);
    }
  }

  /** @internal True while the connection is open (new event registrations are made). */
  get acceptsRegistrations(): boolean {
    return this.isOpen;
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


  /**
   * @internal A libvirt connection of this Connection's own, outside the lanes: for code that makes
   * blocking calls on it from a thread of its own (the passthrough proxy's thread), one at a time. No
   * other call ever uses it. `lost` hears when it is gone (the daemon went away, or this Connection
   * closes: its socket is then shut down, so that a call stuck on it returns). Objects looked up on
   * `conn` must be freed by the holder before release(), which closes the connection.
   */
  async reserveLane(lost: (reason: LibvirtError) => void): Promise<ReservedLane> {
    if (this.closedState !== 'open') throw LibvirtError.closed();
    // While libvirtd restarts, wait for the reconnection as calls do.
    if (this.reconnecting) await this.reconnecting.promise.catch(() => undefined);
    if (this.closedState !== 'open' || this.lost !== undefined) throw this.lost ?? LibvirtError.closed();
    // Adopted like any lane (its close callback reports the daemon's departure), never added to the pool.
    const lane = await this.openLane();
    this.reserved.set(lane, lost);
    return { conn: lane.conn, fd: lane.fd, release: () => this.closeReserved(lane) };
  }

  /** Closes a reserved lane once, whoever asks first (its holder, or this connection closing). */
  private async closeReserved(lane: Lane): Promise<void> {
    if (!this.reserved.delete(lane)) return;
    await this.closeLane(lane, [], 1000).catch(() => undefined);
  }

  /** Tells the reserved lanes' holders that their connections are gone; their sockets are shut down. */
  private loseReserved(reason: LibvirtError): void {
    for (const [lane, lost] of [...this.reserved]) {
      if (lane.fd !== null) runtime.shutdownSocket(lane.fd);
      try {
        lost(reason);
      } catch {
        // a holder's callback must not break the connection's bookkeeping
      }
    }
  }

  /** Deregisters events, releases every object handle and closes every lane. Idempotent. */
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
    this.loseReserved(LibvirtError.closed());
    await Promise.allSettled([...this.reserved.keys()].map((lane) => this.closeReserved(lane)));
    await this.stopCallsInFlight();
    // After every queued (de)registration: they all run before the close.
    await this.events.close(!wasLost);
    this.pool.failWaiters(LibvirtError.closed());
    if (this.releaseFlush) {
      // Queued on their workers before each lane's close.
      clearImmediate(this.releaseFlush);
      this.flushReleases();
    }
    const lanes = this.pool.retireAll();
    // Each lane frees the handles it returned; handles of retired lanes go with the first open one.
    const perLane = new Map<Lane, { cls: string; ptr: bigint }[]>(lanes.map((l) => [l, []]));
    const orphans: { cls: string; ptr: bigint }[] = [];
    for (const h of this.handles.values()) (perLane.get(h.home) ?? orphans).push({ cls: h.cls, ptr: h.ptr });
    for (const token of this.handles.keys()) this.finalizer.unregister(token);
    this.handles.clear();
    this.byPtr.clear();
    const timeoutMs = wasLost ? Math.min(this.callTimeoutMs || 1000, 1000) : this.callTimeoutMs;
    try {
      const results = await Promise.allSettled(
        lanes.map((lane, i) => this.closeLane(lane, [...perLane.get(lane)!, ...(i === 0 ? orphans : [])], timeoutMs)),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      // A lost connection still closes (libvirt reports the old error); anything else is worth surfacing.
      if (failed && !wasLost && !(failed.reason instanceof LibvirtError && failed.reason.isConnectionLost)) throw failed.reason;
      if (lanes.length === 0 && orphans.length > 0) {
        // Every lane is gone (lost for good): free the handles on a spare thread.
        const executor = spareExecutors.pop() ?? (await Executor.create());
        await executor.call('releaseMany', [orphans]).catch(() => undefined);
        recycle(executor);
      }
    } finally {
      this.closedState = 'closed';
      this.unlisten();
    }
  }

  /**
   * Calls still running when close() is called get a moment to finish; one that does not (a guest whose
   * QEMU hangs would hold it until its deadline, and close() with it) has its lane's socket shut down, so
   * libvirt returns it at once with a connection error.
   */
  private async stopCallsInFlight(): Promise<void> {
    const until = performance.now() + CLOSE_GRACE_MS;
    while (this.pool.lanes.some((l) => l.busy) && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    for (const lane of this.pool.lanes) if (lane.busy && lane.fd !== null) runtime.shutdownSocket(lane.fd);
  }

  /** Frees `handles` and the lane's copies, closes its libvirt connection, and returns its worker to the spares. */
  private async closeLane(lane: Lane, handles: { cls: string; ptr: bigint }[], timeoutMs: number): Promise<void> {
    this.lanesById.delete(lane.connId);
    const copies = [...lane.copies].map(([ptr, cls]) => ({ cls, ptr }));
    lane.copies.clear();
    for (const h of this.handles.values()) h.copies.delete(lane);
    try {
      await lane.executor.call('close', [lane.conn, [...handles, ...copies], runtime.closeCallback], { timeoutMs });
    } finally {
      if (lane.fd !== null) runtime.connectionFds.delete(lane.fd);
      this.retiredMax = Math.max(this.retiredMax, lane.executor.maxConcurrentNativeCalls);
      recycle(lane.executor);
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
      const lane = this.lanesById.get(m.connId);
      if (lane !== undefined && !lane.retired && this.closedState === 'open') {
        const reason = virConnectCloseReasonNames[m.reason]?.replace('VIR_CONNECT_CLOSE_REASON_', '').toLowerCase() ?? `reason ${m.reason}`;
        this.markLost(LibvirtError.disconnected(reason));
      }
      return;
    }
    this.events.deliver(m);
  }

  /** Opens one more lane for this connection (the pool asks when callers wait and it is below its size). */
  private async openLane(): Promise<Lane> {
    const gen = this.generation;
    const { lane } = await openLane(this.requestedUri, this.readOnly, this.callTimeoutMs || 30_000);
    lane.generation = gen;
    if (gen !== this.generation || this.closedState !== 'open' || this.lost !== undefined) {
      // The daemon went away or the connection closed meanwhile: this lane is not wanted.
      void this.closeLane(lane, [], 1000).catch(() => undefined);
      throw LibvirtError.closed(undefined, undefined, 'the connection changed while a lane was opening');
    }
    this.adoptLane(lane);
    return lane;
  }

  /** Makes an opened lane this connection's: its pointer recognised in arguments, its stuck calls handled. */
  private adoptLane(lane: Lane): void {
    this.connPointers.add(lane.conn);
    this.lanesById.set(lane.connId, lane);
    lane.executor.onStuck = (op) => this.retireStuck(lane, op);
  }

  /**
   * A call on `lane` missed its deadline (it already rejected with LibvirtTimeoutError): the lane leaves
   * service and its socket is shut down so that the native call returns; the other lanes go on, and the
   * pool opens a replacement when callers wait. If it was the primary, the event registrations move to
   * another lane and every stream yields a gap notice.
   */
  private retireStuck(lane: Lane, op: string): void {
    if (lane.retired || this.closedState !== 'open') return;
    const since = new Date();
    const wasPrimary = this.pool.retire(lane);
    this.retiring.add(lane);
    if (lane.fd !== null) runtime.shutdownSocket(lane.fd);
    // Queued behind the stuck call: runs once it has returned. Its worker no longer holds the process.
    lane.executor.detach();
    void this.closeLane(lane, [], 0)
      .catch(() => undefined)
      .finally(() => this.retiring.delete(lane));
    this.emit('lane-retired', { operation: op, openLanes: this.pool.lanes.length });
    if (this.lost !== undefined) return;
    if (wasPrimary || this.pool.lanes.length === 0) void this.movePrimary(since);
  }

  /** The primary lane was retired: another (or a new) lane takes its place and the events are registered there. */
  private async movePrimary(since: Date): Promise<void> {
    this.events.suspend();
    if (this.pool.primary === undefined) {
      try {
        this.pool.add(await this.openLane());
      } catch (err) {
        if (err instanceof LibvirtError) this.markLost(err);
        return;
      }
    }
    await this.events.resume({ kind: 'gap', since, until: new Date() });
  }

  private markLost(reason: LibvirtError): void {
    if (this.lost || this.closedState !== 'open') return;
    this.lost = reason;
    this.loseReserved(reason);
    // Every lane is gone with the daemon: their workers free what they held and go back to the spares.
    for (const lane of this.pool.retireAll()) void this.closeLane(lane, [], 1000).catch(() => undefined);
    if (!this.reconnectOptions) {
      this.pool.failWaiters(this.lostFor('a call'));
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

  /** Re-opens the same URI as a new primary lane, with capped exponential backoff, until giveUpAfterMs. */
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
          if (this.waiting === 0 && this.pool.queued === 0) timer.unref();
          onWake(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        if (this.closedState !== 'open') throw LibvirtError.closed(undefined, undefined, 'the connection was closed while reconnecting');
        try {
          const { lane } = await openLane(this.requestedUri, this.readOnly, this.callTimeoutMs || 30_000);
          this.generation++;
          lane.generation = this.generation;
          this.identity = lane.conn;
          this.adoptLane(lane);
          this.pool.add(lane);
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
      this.pool.failWaiters(gaveUp);
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

  /** Wraps a reference from the worker in an object, released when unreferenced or on close() (see LibvirtContext.adopt). */
  adopt(cls: string, ref: ObjectRef): LibvirtObject {
    const Ctor = this.classes[cls];
    if (!Ctor) throw new Error(`no class ${cls}`);
    const home = this.unadopted.get(ref.ptr) ?? this.pool.primary;
    this.unadopted.delete(ref.ptr);
    if (this.closedState !== 'open' || home === undefined) {
      // Closed while the call was in flight: do not leak the handle.
      if (home) void home.executor.call('release', [cls, ref.ptr]).catch(() => undefined);
      throw LibvirtError.closed(undefined, undefined, 'the connection was closed during the call');
    }
    const obj = new Ctor(this, ref);
    const token = {};
    const h: Handle = { cls, ptr: ref.ptr, uuid: ref.uuid, home, copies: new Map(), lookups: new Map() };
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
    this.queueRelease(h.home, h.cls, h.ptr);
    for (const [lane, ptr] of h.copies) {
      lane.copies.delete(ptr);
      this.queueRelease(lane, h.cls, ptr);
    }
  }

  /** Releases queued per lane and sent in one hop per turn (the collector finalizes objects in batches). */
  private releases = new Map<Lane, { cls: string; ptr: bigint }[]>();
  private releaseFlush: NodeJS.Immediate | undefined;

  private queueRelease(lane: Lane, cls: string, ptr: bigint): void {
    let list = this.releases.get(lane);
    if (!list) this.releases.set(lane, (list = []));
    list.push({ cls, ptr });
    this.releaseFlush ??= setImmediate(() => this.flushReleases());
  }

  /**
   * virXFree is local (no RPC), so any lane may run it; it still takes its turn on the lane like a call,
   * so that nothing else (an event registration) is in flight on that connection meanwhile.
   */
  private flushReleases(): void {
    this.releaseFlush = undefined;
    const batches = this.releases;
    this.releases = new Map();
    for (const [lane, list] of batches) {
      const want: LaneWant = lane.retired ? 'any' : lane;
      this.pool.acquire(want).then(
        (l) => void l.executor.call('releaseMany', [list]).catch(() => undefined).finally(() => this.pool.release(l)),
        // closing (no lane will come): the lane's own worker still frees them, before its close
        () => void lane.executor.call('releaseMany', [list]).catch(() => undefined),
      );
    }
  }
}

/** How long close() lets calls in flight finish before it shuts their lanes' sockets. */
const CLOSE_GRACE_MS = 250;

/** Lanes per connection unless told otherwise. */
const DEFAULT_LANES = 4;
const MAX_LANES = 64;

/** Opens one libvirt connection on a worker of its own (a spare one when there is). */
async function openLane(uri: string | null, readOnly: boolean, timeoutMs: number): Promise<{ lane: Lane; uri: string }> {
  // The event implementation must be registered before the first virConnectOpen in the process.
  // (Starting the executor thread meanwhile is fine: it opens nothing until asked.)
  const [, executor] = await Promise.all([runtime.start(), spareExecutors.pop() ?? Executor.create()]);
  let opened: Awaited<ReturnType<ExecOps['open']>>;
  try {
    opened = await runtime.withOpenLock(() => executor.call('open', [uri, readOnly], { timeoutMs }));
  } catch (err) {
    recycle(executor);
    throw err;
  }
  const connId = ++connectionSeq;
  if (opened.fd !== null) runtime.connectionFds.add(opened.fd);
  // Close callback (remote drivers only; others decline): tells us when the daemon goes away.
  await executor.call('registerCloseCallback', [opened.conn, runtime.closeCallback, connId], { timeoutMs }).catch(() => undefined);
  return { lane: new Lane(executor, opened.conn, opened.fd, connId), uri: opened.uri };
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
  if (!executor.isDead && !executor.isDetached && !executor.busy && spareExecutors.length < MAX_SPARE_EXECUTORS) {
    executor.onStuck = undefined;
    spareExecutors.push(executor);
  } else {
    void executor.terminate();
  }
}
