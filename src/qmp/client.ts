import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import type {
  AnyEvent,
  CommandMap,
  CommandReturn,
  EventMap,
  EventOf,
  ExecuteOptions,
  ExecuteRest,
  QmpEvent,
} from './command-map.js';
import { FdPassingError, MessageTooLargeError, QmpClosedError, QmpCommandError, QmpProtocolError, QmpStateError, QmpTimeoutError } from './errors.js';
import { DeadlineTimer, monotonicNow } from './deadline-timer.js';
import { redact } from './redact.js';
import { StreamTransport, type StreamTarget, type StreamTransportOptions } from './stream-transport.js';
import type { QmpMessage, QmpTransport } from './transport.js';

/** The client's lifecycle; `idle` is a constructed client that has not been opened yet. */
export type Runstate = 'idle' | 'connecting' | 'negotiating' | 'running' | 'closing' | 'closed';

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  /** Capabilities the server offered (QEMU: `oob`). */
  capabilities: string[];
}

/** Checks a command before it is sent (the schema layer plugs in here). Throw to refuse it. */
export interface CommandValidator {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any client, whatever its maps
  validate(command: string, args: Record<string, unknown> | undefined, client: QmpClient<any, any>): void | Promise<void>;
}

/** Diagnostics sink: dropped replies, protocol errors, listener failures. */
export interface QmpLogger {
  debug?(message: string, details?: Record<string, unknown>): void;
  warn?(message: string, details?: Record<string, unknown>): void;
}

export type TrafficDirection = 'in' | 'out';

export interface QmpClientOptions {
  /** Default per-command timeout in ms (default 30 000; 0 = none). Also the default for waitForEvent. */
  timeoutMs?: number;
  /** Time allowed to open the transport (default 10 000; 0 = none). */
  connectTimeoutMs?: number;
  /** Time allowed for greeting + qmp_capabilities (default 10 000; 0 = none). */
  handshakeTimeoutMs?: number;
  /** Enable out-of-band execution when the server offers it (default false). */
  oob?: boolean;
  /** In-band commands in flight at once (default 8, QMP's recommendation; 1 for non-pipelining transports). */
  maxInFlight?: number;
  /** Runs before every command is sent. */
  validator?: CommandValidator;
  /** Sees every message in and out, with secret members redacted. */
  onTraffic?: (direction: TrafficDirection, message: QmpMessage) => void;
  logger?: QmpLogger;
  /** Default buffer size of events() subscriptions (default 1000). */
  eventBufferSize?: number;
}

export interface QmpOpenOptions {
  signal?: AbortSignal;
}

export type QmpTarget = StreamTarget | { transport: QmpTransport };
export interface QmpConnectOptions extends QmpClientOptions, StreamTransportOptions, QmpOpenOptions {}

export interface EventsOptions<N extends string, Ev> {
  /** Only these event names. */
  names?: readonly N[];
  /** Only events this returns true for. */
  filter?: (event: Ev) => boolean;
  /** Queue capacity (default: the client's eventBufferSize). */
  bufferSize?: number;
  /** What happens when the queue is full (default 'error': the iteration ends with QueueOverflowError). */
  overflow?: OverflowPolicy;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

export interface WaitForEventOptions<Ev> {
  match?: (event: Ev) => boolean;
  signal?: AbortSignal;
  /** Default: the client's timeoutMs; 0 = none. */
  timeoutMs?: number;
}

export interface EventMatch<N extends string, Ev> extends WaitForEventOptions<Ev> {
  name: N;
}

type ClientEventListener = (event: QmpEvent<string, unknown>) => void;

interface EventListenerEntry {
  names: ReadonlySet<string> | undefined;
  fn: ClientEventListener;
}

/** A command from submit() until it settles. A class, not closures: one allocation per command. */
class Pending {
  sent = false;
  resolve!: (value: unknown) => void;
  reject!: (err: unknown) => void;
  /** Only set when the caller passed a signal. */
  onAbort: (() => void) | undefined;
  /** File descriptors that go with the command (SCM_RIGHTS). */
  fds: readonly number[] | undefined;

  constructor(
    readonly id: string,
    readonly command: string,
    readonly message: QmpMessage,
    readonly oob: boolean,
    readonly timeoutMs: number,
    /** monotonicNow() + timeoutMs; Infinity for no timeout. */
    readonly deadline: number,
    readonly signal: AbortSignal | undefined,
  ) {}

  cleanup(): void {
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_EVENT_BUFFER = 1000;

/**
 * A QMP client. Replies are matched by id (never by order), events are accepted at any moment (even
 * before the greeting), every wait is bounded by a timeout or an AbortSignal, and when the connection
 * drops every pending call rejects at once.
 *
 * Typed with a command map and an event map (the schema layer's QemuClient subclasses this); names the
 * maps do not know stay loosely typed, so newer QEMU commands remain callable.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- {} = "no typed commands"
export class QmpClient<C extends CommandMap = {}, E extends EventMap = {}> implements AsyncDisposable {
  /**
   * Connects to `target`, waits for the greeting and negotiates capabilities. A subclass's
   * `connect` returns the subclass (it calls `new this(...)`).
   */
  static async connect<This extends new (transport: QmpTransport, options?: QmpClientOptions) => object>(
    this: This,
    target: QmpTarget,
    options: QmpConnectOptions = {},
  ): Promise<InstanceType<This>> {
    if (target === null || typeof target !== 'object') {
      throw new InvalidArgumentError(`QmpClient.connect: target must be an object, got ${String(target)}`, {
        hint: 'pass { path }, { host, port }, { fd }, { stream } or { transport }',
      });
    }
    const transport =
      'transport' in target
        ? target.transport
        : new StreamTransport(target, {
            ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
            ...(options.maxOutboundBytes === undefined ? {} : { maxOutboundBytes: options.maxOutboundBytes }),
            ...(options.fdPassing === undefined ? {} : { fdPassing: options.fdPassing }),
          });
    const client = new this(transport, options) as InstanceType<This>;
    await (client as unknown as QmpClient).open(options.signal === undefined ? {} : { signal: options.signal });
    return client;
  }

  readonly transport: QmpTransport;
  private state: Runstate = 'idle';
  private greetingValue: QmpGreeting | undefined;
  private oob = false;
  private validator: CommandValidator | undefined;
  private readonly options: QmpClientOptions;
  private readonly defaultTimeoutMs: number;
  private readonly maxInFlight: number;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  /** Ids whose caller gave up (timeout/abort): late replies are dropped quietly; value = was oob. */
  private readonly reserved = new Map<string, boolean>();
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private readonly eventListeners = new Set<EventListenerEntry>();
  private readonly runstateListeners = new Set<(state: Runstate, previous: Runstate) => void>();
  private readonly protocolErrorListeners = new Set<(err: Error) => void>();
  private readonly closeListeners = new Set<(err: QmpClosedError | undefined) => void>();
  private greetingWaiter: { resolve(g: QmpGreeting): void; reject(e: unknown): void } | undefined;
  private closeError: QmpClosedError | undefined;
  private closedPromise: Promise<void> | undefined;
  /** Per-command timeouts: one timer for all pending commands instead of one each. */
  private readonly deadlines = new DeadlineTimer((now) => this.expireDeadlines(now));

  constructor(transport: QmpTransport, options: QmpClientOptions = {}) {
    if (!transport || typeof transport.open !== 'function' || typeof transport.send !== 'function') {
      throw new InvalidArgumentError('QmpClient: transport must implement QmpTransport', {
        hint: 'use QmpClient.connect({ path }) or pass a StreamTransport',
      });
    }
    checkTimeout('timeoutMs', options.timeoutMs);
    checkTimeout('connectTimeoutMs', options.connectTimeoutMs);
    checkTimeout('handshakeTimeoutMs', options.handshakeTimeoutMs);
    if (options.maxInFlight !== undefined && (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1)) {
      throw new InvalidArgumentError(`maxInFlight must be a positive integer, got ${String(options.maxInFlight)}`, {
        hint: 'QMP recommends at most 8 in-band commands in flight',
      });
    }
    this.transport = transport;
    this.options = options;
    this.validator = options.validator;
    this.defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxInFlight = transport.capabilities.pipelining ? (options.maxInFlight ?? 8) : 1;
  }

  get runstate(): Runstate {
    return this.state;
  }

  /** The server's greeting; throws QmpStateError before it has arrived. */
  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new QmpStateError('no QMP greeting yet', { hint: 'await client.open() (or use QmpClient.connect) first' });
    return this.greetingValue;
  }

  /** Whether out-of-band execution was negotiated. */
  get oobEnabled(): boolean {
    return this.oob;
  }

  /** Commands sent and not yet answered (including those whose callers gave up), plus queued ones. */
  get pendingCount(): number {
    return this.pending.size + this.reserved.size;
  }

  /** Installs (or removes, with undefined) the validator that runs before every command. */
  setValidator(validator: CommandValidator | undefined): void {
    if (validator !== undefined && typeof validator?.validate !== 'function') {
      throw new InvalidArgumentError('setValidator: expected an object with validate(command, args, client)');
    }
    this.validator = validator;
  }

  /** Opens the transport, waits for the greeting and negotiates. Resolves to the greeting. */
  async open(options: QmpOpenOptions = {}): Promise<QmpGreeting> {
    if (this.state !== 'idle') {
      throw new QmpStateError(`open() called in runstate "${this.state}"`, { hint: 'a client opens once; create a new one to reconnect' });
    }
    options.signal?.throwIfAborted();
    this.setState('connecting');
    const greetingPromise = new Promise<QmpGreeting>((resolve, reject) => {
      this.greetingWaiter = { resolve, reject };
    });
    greetingPromise.catch(() => {}); // observed below; avoid an unhandled rejection if open fails first
    try {
      await withDeadline(
        `connect to ${this.transport.description}`,
        this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        options.signal,
        (signal) =>
          this.transport.open(
            {
              message: (m) => this.onMessage(m),
              protocolError: (e) => this.onProtocolError(e),
              closed: (r) => this.onTransportClosed(r),
            },
            signal,
          ),
      );
      if ((this.state as Runstate) === 'closed') throw this.closeError ?? new QmpClosedError('closed while connecting');
      this.setState('negotiating');
      const greeting = await withDeadline(
        `QMP handshake with ${this.transport.description}`,
        this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
        options.signal,
        async (signal) => {
          const greeting = await abortable(greetingPromise, signal);
          await this.negotiate(greeting, signal);
          return greeting;
        },
      );
      this.setState('running');
      return greeting;
    } catch (err) {
      this.greetingWaiter = undefined;
      await this.shutdown(err instanceof QmpClosedError ? err : new QmpClosedError(`open failed: ${errorMessage(err)}`, { cause: err }));
      throw err;
    }
  }

  /**
   * Runs a command and resolves to its `return` value. Rejects with QmpCommandError (QEMU said no),
   * QmpTimeoutError, QmpClosedError, or the signal's reason.
   */
  execute<K extends string>(command: K, ...rest: ExecuteRest<C, K>): Promise<CommandReturn<C, K>> {
    const [args, options] = rest as [Record<string, unknown> | undefined, ExecuteOptions | undefined];
    return this.run(command, args, options ?? {}) as Promise<CommandReturn<C, K>>;
  }

  /** Runs an HMP command line through `human-monitor-command` and resolves to its text output. */
  async hmp(commandLine: string, options: ExecuteOptions = {}): Promise<string> {
    if (typeof commandLine !== 'string' || commandLine.trim() === '') {
      throw new InvalidArgumentError('hmp: commandLine must be a non-empty string', { hint: 'e.g. client.hmp("info status")' });
    }
    const out = await this.run('human-monitor-command', { 'command-line': commandLine }, options);
    return typeof out === 'string' ? out : '';
  }

  /** Async iterable of events through its own bounded queue; `break` (or return()) unsubscribes. */
  events(options?: EventsOptions<string, AnyEvent<E>> & { names?: undefined }): BoundedQueue<AnyEvent<E>>;
  events<N extends string>(options: EventsOptions<N, EventOf<E, N>> & { names: readonly N[] }): BoundedQueue<EventOf<E, N>>;
  events(options: EventsOptions<string, never> = {}): unknown {
    const names = checkNames(options.names);
    const filter = options.filter as ((e: QmpEvent<string, unknown>) => boolean) | undefined;
    if (filter !== undefined && typeof filter !== 'function') throw new InvalidArgumentError('events: filter must be a function');
    const capacity = options.bufferSize ?? this.options.eventBufferSize ?? DEFAULT_EVENT_BUFFER;
    if (this.state === 'closed' || this.state === 'closing') {
      const q = new BoundedQueue<QmpEvent<string, unknown>>({ capacity: Math.max(1, capacity) });
      q.end(this.closeError);
      return q;
    }
    const entry: EventListenerEntry = {
      names,
      fn: (ev) => {
        if (filter && !this.safeMatch(filter, ev)) return;
        queue.push(ev);
      },
    };
    const onClose = (err: QmpClosedError | undefined) => queue.end(err);
    const onAbort = () => queue.end();
    const queue = new BoundedQueue<QmpEvent<string, unknown>>({
      capacity,
      overflow: options.overflow ?? 'error',
      what: 'QMP events',
      onDrop: (n) => this.options.logger?.warn?.('event subscriber overflowed', { dropped: n, capacity }),
      onClose: () => {
        this.eventListeners.delete(entry);
        this.closeListeners.delete(onClose);
        options.signal?.removeEventListener('abort', onAbort);
      },
    });
    this.eventListeners.add(entry);
    this.closeListeners.add(onClose);
    if (options.signal?.aborted) queue.end();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    return queue;
  }

  /** Waits for the next event called `name` (and accepted by `match`). */
  waitForEvent<N extends string>(name: N, options: WaitForEventOptions<EventOf<E, N>> = {}): Promise<EventOf<E, N>> {
    return this.startWait(name, options).promise;
  }

  /** Subscribes first, then runs the command, then waits for the event: no race between the two. */
  async executeAndWait<K extends string, N extends string>(
    command: K,
    args: ExecuteRest<C, K>[0],
    eventMatch: EventMatch<N, EventOf<E, N>>,
    options: ExecuteOptions = {},
  ): Promise<{ result: CommandReturn<C, K>; event: EventOf<E, N> }> {
    if (!eventMatch || typeof eventMatch.name !== 'string') {
      throw new InvalidArgumentError('executeAndWait: eventMatch.name must be an event name', { hint: 'e.g. { name: "STOP" }' });
    }
    const wait = this.startWait(eventMatch.name, eventMatch);
    try {
      const result = (await this.run(command, args as Record<string, unknown> | undefined, options)) as CommandReturn<C, K>;
      return { result, event: await wait.promise };
    } catch (err) {
      wait.cancel();
      throw err;
    }
  }

  on(type: 'event', listener: (event: AnyEvent<E>) => void): () => void;
  on<N extends string>(type: 'event', listener: (event: EventOf<E, N>) => void, options: { names: readonly N[] }): () => void;
  on(type: 'runstate', listener: (state: Runstate, previous: Runstate) => void): () => void;
  /** Invalid or oversized messages from the peer (the stream stays in sync). */
  on(type: 'protocolError', listener: (err: Error) => void): () => void;
  on(type: 'event' | 'runstate' | 'protocolError', listener: (...a: never[]) => void, options?: { names?: readonly string[] }): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError(`on("${type}"): listener must be a function`);
    if (type === 'event') {
      const entry: EventListenerEntry = { names: checkNames(options?.names), fn: listener as ClientEventListener };
      this.eventListeners.add(entry);
      return () => this.eventListeners.delete(entry);
    }
    if (type === 'runstate') {
      const fn = listener as (s: Runstate, p: Runstate) => void;
      this.runstateListeners.add(fn);
      return () => this.runstateListeners.delete(fn);
    }
    if (type === 'protocolError') {
      const fn = listener as (e: Error) => void;
      this.protocolErrorListeners.add(fn);
      return () => this.protocolErrorListeners.delete(fn);
    }
    throw new InvalidArgumentError(`on: unknown notification "${String(type)}"`, { hint: 'use "event", "runstate" or "protocolError"' });
  }

  /** Resolves when the client reaches `state` (or rejects on timeout/abort). */
  waitForRunstate(state: Runstate, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.state === state) return Promise.resolve();
    return withDeadline(`waiting for runstate "${state}"`, options.timeoutMs ?? this.defaultTimeoutMs, options.signal, (signal) =>
      new Promise<void>((resolve, reject) => {
        const off = this.on('runstate', (s) => {
          if (s !== state) return;
          off();
          resolve();
        });
        signal.addEventListener('abort', () => (off(), reject(signal.reason)), { once: true });
      }),
    );
  }

  /** Closes the connection; every pending call rejects with QmpClosedError. Idempotent. */
  async close(): Promise<void> {
    await this.shutdown(new QmpClosedError('closed by the client', { hint: 'the client was closed on purpose; do not use it afterwards' }), true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- sending -------------------------------------------------------------------------------

  private run(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions): Promise<unknown> {
    try {
      this.checkCall(command, args, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const validator = this.validator;
    if (validator) {
      let verdict: void | Promise<void>;
      try {
        verdict = validator.validate(command, args, this);
      } catch (err) {
        return Promise.reject(err);
      }
      // A synchronous validator keeps calls in the order they were made.
      if (verdict && typeof verdict.then === 'function') {
        return verdict.then(() => {
          options.signal?.throwIfAborted();
          return this.submit(command, args, options);
        });
      }
    }
    return this.submit(command, args, options);
  }

  private checkCall(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions): void {
    if (typeof command !== 'string' || command === '') {
      throw new InvalidArgumentError(`execute: command must be a non-empty string, got ${JSON.stringify(command)}`, { hint: 'e.g. "query-status"' });
    }
    if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
      throw new InvalidArgumentError(`execute(${command}): args must be an object or undefined`, { hint: 'QMP arguments are a JSON object of named members' });
    }
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`execute(${command}): options must be an object`);
    checkTimeout('timeoutMs', options.timeoutMs);
    if (options.oob && !this.oob) {
      throw new InvalidArgumentError(`execute(${command}, { oob: true }): out-of-band execution is not enabled on this connection`, {
        hint: 'connect with { oob: true } to a QEMU whose greeting offers "oob" (and the command must allow oob)',
      });
    }
    if (options.fds !== undefined) checkFds(command, options.fds, this.transport);
    options.signal?.throwIfAborted();
    if (this.state !== 'running') {
      if (this.state === 'closed' || this.state === 'closing') {
        throw this.closeError ?? new QmpClosedError(`client is ${this.state}`);
      }
      throw new QmpStateError(`execute(${command}) called in runstate "${this.state}"`, { hint: 'await client.open() (or QmpClient.connect) before executing commands' });
    }
  }

  /** Creates the pending entry and sends it now or queues it behind the in-flight cap. */
  private submit(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions, internal = false): Promise<unknown> {
    if (!internal && this.state !== 'running') return Promise.reject(this.closeError ?? new QmpClosedError(`client is ${this.state}`));
    // Short decimal strings: QEMU 7.2 answers measurably later the longer the id is (see bench/qmp.bench.ts).
    const id = String(this.nextId++);
    const oob = options.oob === true;
    const message: QmpMessage = oob ? { 'exec-oob': command } : { execute: command };
    if (args !== undefined) message.arguments = args;
    message.id = id;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const signal = options.signal;
    const p = new Pending(id, command, message, oob, timeoutMs, timeoutMs > 0 ? monotonicNow() + timeoutMs : Infinity, signal);
    if (options.fds?.length) p.fds = [...options.fds];
    const promise = new Promise<unknown>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    if (p.deadline !== Infinity) this.deadlines.ensure(p.deadline);
    if (signal) {
      p.onAbort = () => this.giveUp(p, signal.reason ?? new Error('aborted'));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.pending.set(id, p);
    if (oob || this.inFlight < this.maxInFlight) this.transmit(p);
    else this.queue.push(p);
    return promise;
  }

  /** The deadline timer fired: times out every overdue command; returns the earliest deadline left. */
  private expireDeadlines(now: number): number {
    let next = Infinity;
    for (const p of this.pending.values()) {
      if (p.deadline <= now) this.giveUp(p, new QmpTimeoutError(`command ${p.command}`, p.timeoutMs));
      else if (p.deadline < next) next = p.deadline;
    }
    return next;
  }

  /** Call after removing a pending command. */
  private settled(): void {
    if (this.pending.size === 0) this.deadlines.idle();
  }

  private transmit(p: Pending): void {
    p.sent = true;
    if (!p.oob) this.inFlight++;
    if (this.options.onTraffic) this.traffic('out', p.message);
    try {
      if (p.fds) this.transport.send(p.message, { fds: p.fds });
      else this.transport.send(p.message);
    } catch (err) {
      this.pending.delete(p.id);
      this.settled();
      if (!p.oob) this.inFlight--;
      p.cleanup();
      // A refusal before sending (e.g. an outbound size cap) is the caller's typed error, not a closed connection.
      p.reject(err instanceof QmpClosedError || err instanceof MessageTooLargeError || err instanceof FdPassingError ? err : new QmpClosedError(`sending ${p.command} failed: ${errorMessage(err)}`, { cause: err }));
    }
  }

  /** Timeout or abort: the caller stops waiting; a sent command's id stays reserved until its reply. */
  private giveUp(p: Pending, reason: unknown): void {
    if (this.pending.get(p.id) !== p) return;
    this.pending.delete(p.id);
    this.settled();
    p.cleanup();
    if (p.sent) {
      this.reserved.set(p.id, p.oob);
    } else {
      const i = this.queue.indexOf(p);
      if (i >= 0) this.queue.splice(i, 1);
    }
    p.reject(reason);
  }

  private releaseSlot(): void {
    this.inFlight--;
    while (this.inFlight < this.maxInFlight && this.queue.length > 0 && this.state === 'running') {
      this.transmit(this.queue.shift()!);
    }
  }

  // ---- receiving -----------------------------------------------------------------------------

  private onMessage(msg: QmpMessage): void {
    if (this.options.onTraffic) this.traffic('in', msg);
    if (typeof msg.event === 'string') {
      this.dispatchEvent(msg);
    } else if ('return' in msg || 'error' in msg) {
      this.onReply(msg);
    } else if ('QMP' in msg) {
      this.onGreeting(msg);
    } else {
      this.options.logger?.warn?.('dropped a QMP message that is neither reply, event nor greeting', { keys: Object.keys(msg) });
    }
  }

  private onGreeting(msg: QmpMessage): void {
    const waiter = this.greetingWaiter;
    if (!waiter) {
      this.options.logger?.warn?.('dropped an unexpected QMP greeting');
      return;
    }
    this.greetingWaiter = undefined;
    const g = parseGreeting(msg.QMP);
    if (g) waiter.resolve(g);
    else waiter.reject(new QmpProtocolError(`malformed QMP greeting: ${JSON.stringify(msg).slice(0, 200)}`));
  }

  private onReply(msg: QmpMessage): void {
    const id = msg.id;
    const p = this.claim(typeof id === 'string' ? id : undefined);
    if (p === 'abandoned') return;
    if (!p) {
      if (id === undefined && 'error' in msg) {
        const e = msg.error as { class?: unknown; desc?: unknown } | undefined;
        this.onProtocolError(new QmpProtocolError(`QEMU reported an error without an id: ${String(e?.class)}: ${String(e?.desc)}`, {
          hint: 'QEMU could not parse something it received on this monitor',
        }));
        return;
      }
      this.options.logger?.warn?.('dropped a reply with an unknown id', { id });
      return;
    }
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: unknown; desc?: unknown };
      p.reject(new QmpCommandError(String(e.class ?? 'GenericError'), String(e.desc ?? ''), p.command, p.id));
    } else {
      p.resolve(msg.return);
    }
  }

  /** The reply to `id` was skipped (too large): its caller gets `err` now rather than its timeout. */
  private onSkippedReply(id: string, err: MessageTooLargeError): void {
    const p = this.claim(id);
    if (p !== undefined && p !== 'abandoned') p.reject(err);
  }

  /**
   * Takes the pending command a reply with this id answers (its slot is freed; the caller settles it).
   * 'abandoned': the late answer of a command whose caller gave up (its reserved id and slot are freed).
   */
  private claim(id: string | undefined): Pending | 'abandoned' | undefined {
    if (id === undefined) return undefined;
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      this.settled();
      p.cleanup();
      if (!p.oob) this.releaseSlot();
      return p;
    }
    if (!this.reserved.has(id)) return undefined;
    const wasOob = this.reserved.get(id)!;
    this.reserved.delete(id);
    this.options.logger?.debug?.('dropped the late reply of a command whose caller gave up', { id });
    if (!wasOob) this.releaseSlot();
    return 'abandoned';
  }

  private dispatchEvent(msg: QmpMessage): void {
    const ev: QmpEvent<string, unknown> = {
      event: msg.event as string,
      data: msg.data,
      timestamp: (msg.timestamp as QmpEvent['timestamp'] | undefined) ?? { seconds: -1, microseconds: -1 },
    };
    for (const entry of [...this.eventListeners]) {
      if (entry.names && !entry.names.has(ev.event)) continue;
      try {
        entry.fn(ev);
      } catch (err) {
        this.options.logger?.warn?.('an event listener threw', { event: ev.event, error: errorMessage(err) });
      }
    }
  }

  private onProtocolError(err: Error): void {
    this.options.logger?.warn?.(err.message);
    // A reply too large to keep: its caller learns why now instead of at its timeout.
    if (err instanceof MessageTooLargeError && err.id !== undefined) this.onSkippedReply(err.id, err);
    for (const fn of [...this.protocolErrorListeners]) {
      try {
        fn(err);
      } catch {
        // a listener's failure must not break the reader
      }
    }
  }

  private onTransportClosed(reason: Error | undefined): void {
    const err = new QmpClosedError(
      reason ? `${this.transport.description}: ${reason.message}` : `${this.transport.description} closed by the peer`,
      reason ? { cause: reason } : undefined,
    );
    void this.shutdown(this.closeError ?? err);
  }

  // ---- negotiation, state, teardown -------------------------------------------------------------

  private async negotiate(greeting: QmpGreeting, signal: AbortSignal): Promise<void> {
    const offered = greeting.capabilities.includes('oob');
    const wantOob = this.options.oob === true && offered && this.transport.capabilities.oob;
    this.greetingValue = greeting;
    if (this.transport.capabilities.preNegotiated) {
      this.oob = wantOob;
      return;
    }
    await this.submit('qmp_capabilities', wantOob ? { enable: ['oob'] } : undefined, { signal, timeoutMs: 0 }, true);
    this.oob = wantOob;
  }

  private setState(next: Runstate): void {
    const previous = this.state;
    if (previous === next) return;
    this.state = next;
    for (const fn of [...this.runstateListeners]) {
      try {
        fn(next, previous);
      } catch (err) {
        this.options.logger?.warn?.('a runstate listener threw', { error: errorMessage(err) });
      }
    }
  }

  private shutdown(err: QmpClosedError, byClient = false): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.closeError = err;
    if (this.state !== 'idle') this.setState('closing');
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    const all = [...this.pending.values()];
    this.pending.clear();
    this.deadlines.stop();
    this.queue.length = 0;
    this.reserved.clear();
    this.inFlight = 0;
    for (const p of all) {
      p.cleanup();
      p.reject(err);
    }
    // Subscribers end quietly on a deliberate close and with the error when the connection dropped.
    for (const fn of [...this.closeListeners]) fn(byClient ? undefined : err);
    this.closeListeners.clear();
    this.closedPromise = this.transport
      .close(byClient ? undefined : err)
      .catch(() => {})
      .then(() => this.setState('closed'));
    return this.closedPromise;
  }

  private startWait<N extends string>(name: N, options: WaitForEventOptions<EventOf<E, N>>): { promise: Promise<EventOf<E, N>>; cancel(): void } {
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('waitForEvent: name must be a non-empty event name', { hint: 'e.g. "STOP"' });
    const match = options.match;
    let cancel: () => void = () => {};
    const promise = withDeadline(`waiting for event ${name}`, options.timeoutMs ?? this.defaultTimeoutMs, options.signal, (signal) => {
      if (this.state === 'closed' || this.state === 'closing') return Promise.reject(this.closeError ?? new QmpClosedError('client is closed'));
      return new Promise<EventOf<E, N>>((resolve, reject) => {
        const entry: EventListenerEntry = {
          names: new Set([name]),
          fn: (ev) => {
            if (match && !this.safeMatch(match as (e: QmpEvent<string, unknown>) => boolean, ev)) return;
            done();
            resolve(ev as EventOf<E, N>);
          },
        };
        const onClose = (err: QmpClosedError | undefined) => (done(), reject(err ?? this.closeError ?? new QmpClosedError('client closed')));
        const onAbort = () => (done(), reject(signal.reason));
        const done = () => {
          this.eventListeners.delete(entry);
          this.closeListeners.delete(onClose);
          signal.removeEventListener('abort', onAbort);
        };
        cancel = () => (done(), reject(new QmpStateError(`wait for ${name} cancelled`)));
        this.eventListeners.add(entry);
        this.closeListeners.add(onClose);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    });
    promise.catch(() => {});
    return { promise, cancel: () => cancel() };
  }

  private safeMatch<T>(fn: (e: T) => boolean, ev: T): boolean {
    try {
      return fn(ev) === true;
    } catch (err) {
      this.options.logger?.warn?.('an event filter threw; event skipped for that subscriber', { error: errorMessage(err) });
      return false;
    }
  }

  private traffic(direction: TrafficDirection, msg: QmpMessage): void {
    try {
      this.options.onTraffic!(direction, redact(msg));
    } catch {
      // logging must never break the protocol
    }
  }
}

function parseGreeting(qmp: unknown): QmpGreeting | undefined {
  if (!qmp || typeof qmp !== 'object') return undefined;
  const g = qmp as { version?: { qemu?: Partial<Record<'major' | 'minor' | 'micro', unknown>>; package?: unknown }; capabilities?: unknown };
  const q = g.version?.qemu;
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  return {
    version: { qemu: { major: num(q?.major), minor: num(q?.minor), micro: num(q?.micro) }, package: typeof g.version?.package === 'string' ? g.version.package : '' },
    capabilities: Array.isArray(g.capabilities) ? g.capabilities.filter((c): c is string => typeof c === 'string') : [],
  };
}

function checkTimeout(name: string, v: number | undefined): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
    throw new InvalidArgumentError(`${name} must be a finite number ≥ 0 (0 = no timeout), got ${String(v)}`);
  }
}

function checkNames(names: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (names === undefined) return undefined;
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new InvalidArgumentError('names must be an array of event names', { hint: 'e.g. { names: ["STOP", "RESUME"] }' });
  }
  return new Set(names);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Races `promise` against a signal. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

/** Runs `fn` with a signal that aborts on the caller's signal or after `timeoutMs` (0 = never). */
async function withDeadline<T>(what: string, timeoutMs: number, outer: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  outer?.throwIfAborted();
  const ac = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => ac.abort(new QmpTimeoutError(what, timeoutMs)), timeoutMs) : undefined;
  const onOuter = () => ac.abort(outer!.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  try {
    return await abortable(fn(ac.signal), ac.signal);
  } finally {
    if (timer) clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
  }
}

/** `fds` of execute(): small non-negative integers, on a transport that can pass them. */
function checkFds(command: string, fds: unknown, transport: QmpTransport): void {
  if (!Array.isArray(fds) || fds.some((fd) => !Number.isInteger(fd) || fd < 0) || fds.length > 253) {
    throw new InvalidArgumentError(`execute(${command}, { fds }): fds must be an array of at most 253 open file descriptors`, { hint: 'e.g. { fds: [fs.openSync(path, "r+")] }' });
  }
  if (fds.length > 0 && !transport.capabilities.fdPassing) {
    throw new FdPassingError(`execute(${command}, { fds }): ${transport.description} cannot pass file descriptors`, {
      hint: 'pass fds on a unix-socket connection made with { fdPassing: unixFdPassing } (QmpClient.connect({ path }, { fdPassing: unixFdPassing })); TCP, and routes whose capabilities say fdPassing: false, cannot carry them',
    });
  }
}
