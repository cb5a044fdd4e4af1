import { abortable, errorMessage, withDeadline } from '../common/abort.js';
import type { BoundedQueue } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { AnyEvent, CommandMap, CommandName, CommandReturn, EventMap, EventName, EventOf, ExecuteOptions, ExecuteRest } from './command-map.js';
import { CommandTable, type CommandSettler } from './command-table.js';
import { MessageTooLargeError, QmpClosedError, QmpStateError, QmpTimeoutError } from './errors.js';
import { EventHub, type EventMatch, type EventsOptions, type WaitForEventOptions } from './event-hub.js';
import { GreetingWaiter, negotiate, type QmpGreeting } from './handshake.js';
import * as opt from './options.js';
import { notifyAll, RunstateCell, type Runstate } from './runstate.js';
import type { QmpMessage, QmpTransport } from './transport.js';
import { checkReplies, isValidator, runThrough, validateAll, type CommandCall, type CommandValidator } from './validator.js';

export type { QmpGreeting } from './handshake.js';
export type { Runstate } from './runstate.js';
export type { CommandSettler } from './command-table.js';

/**
 * A QMP client: the runstate machine (open → negotiate → running → closing → closed) and the public
 * API. Commands live in a CommandTable (ids, in-flight cap, deadlines), events in an EventHub, checks
 * in CommandValidator hooks. Replies are matched by id, events are accepted at any moment, every wait
 * is bounded, and when the connection drops every pending call settles at once.
 *
 * `C`/`E`: command and event maps (the schema layer's generated ones); with them execute() accepts only
 * the map's names, and executeUnchecked()/`untyped` reach commands and events newer than the map.
 * `O`: what this client adds to the per-call options; its validators receive them. A type parameter,
 * not a module augmentation (which adds the option to every client in the program) nor a typed
 * `extensions` bag (which this layer would have to declare for the layers above it): an option exists
 * exactly on the clients whose validators read it, e.g. `allowUnsafe` on the facade's.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- {} = "no typed commands"
export class QmpClient<C extends CommandMap = {}, E extends EventMap = {}, O extends {} = {}> implements AsyncDisposable {
  /** Connects to `target`, waits for the greeting and negotiates. A subclass's `connect` returns the subclass. */
  static async connect<This extends new (transport: QmpTransport, options?: opt.QmpClientOptions) => object>(
    this: This,
    target: opt.QmpTarget,
    options: opt.QmpConnectOptions = {},
  ): Promise<InstanceType<This>> {
    const client = new this(opt.transportFor(target, options), options) as InstanceType<This>;
    await (client as unknown as QmpClient).open(options.signal === undefined ? {} : { signal: options.signal });
    return client;
  }

  readonly transport: QmpTransport;
  private readonly runstates: RunstateCell;
  private greetingValue: QmpGreeting | undefined;
  private oob = false;
  /** Replaced, never mutated, so a call in progress keeps the list it started with. */
  private validators: readonly CommandValidator<O>[] = [];
  /** Some validator checks replies (executeTo then takes the promise path). */
  private checksReplies = false;
  private readonly options: opt.QmpClientOptions<O>;
  private readonly defaultTimeoutMs: number;
  private readonly table: CommandTable;
  private readonly hub: EventHub<E>;
  private readonly protocolErrorListeners = new Set<(err: Error) => void>();
  private greetingWaiter: GreetingWaiter | undefined;
  private readonly traffic: (direction: opt.TrafficDirection, msg: QmpMessage) => void;
  private closeError: QmpClosedError | undefined;
  private closedPromise: Promise<void> | undefined;

  constructor(transport: QmpTransport, options: opt.QmpClientOptions<O> = {}) {
    opt.checkClientOptions(transport, options);
    this.transport = transport;
    this.runstates = new RunstateCell(options.logger);
    this.options = options;
    this.defaultTimeoutMs = options.timeoutMs ?? opt.DEFAULT_TIMEOUT_MS;
    const { logger } = options;
    this.traffic = opt.trafficTap(options.onTraffic);
    this.table = new CommandTable({
      maxInFlight: transport.capabilities.pipelining || transport.capabilities.orderedByKey ? (options.maxInFlight ?? 8) : 1,
      defaultTimeoutMs: this.defaultTimeoutMs,
      usesOrderingKeys: transport.capabilities.orderedByKey === true,
      send: (m, sendOptions) => (this.traffic('out', m), sendOptions ? transport.send(m, sendOptions) : transport.send(m)),
      logger,
    });
    this.hub = new EventHub<E>({ defaultTimeoutMs: this.defaultTimeoutMs, bufferSize: options.eventBufferSize ?? opt.DEFAULT_EVENT_BUFFER, logger });
    for (const v of options.validators ?? []) this.use(v);
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
    return this.table.size;
  }

  /** This client without its command and event maps: any name compiles, results are `unknown` (same connection). */
  get untyped(): QmpClient<{}, {}, O> {
    return this as unknown as QmpClient<{}, {}, O>;
  }

  /** Adds a hook that runs around every command, after those added before it. Returns its removal. */
  use(validator: CommandValidator<O>): () => void {
    if (!isValidator(validator)) throw new InvalidArgumentError('use: expected a CommandValidator, an object with validate(call) and/or checkReply(call, value)');
    this.setValidators([...this.validators, validator]);
    return () => this.setValidators(this.validators.filter((v) => v !== validator));
  }

  private setValidators(list: readonly CommandValidator<O>[]): void {
    this.validators = list;
    this.checksReplies = list.some((v) => v.checkReply);
  }

  /** Opens the transport, waits for the greeting and negotiates. Resolves to the greeting. */
  async open(options: opt.QmpOpenOptions = {}): Promise<QmpGreeting> {
    if (this.state !== 'idle') throw new QmpStateError(`open() called in runstate "${this.state}"`, { hint: 'a client opens once; create a new one to reconnect' });
    options.signal?.throwIfAborted();
    this.setState('connecting');
    const greeting = (this.greetingWaiter = new GreetingWaiter()).promise;
    const deadline = (what: string, timeoutMs: number) => ({ timeoutMs, signal: options.signal, onTimeout: () => new QmpTimeoutError(what, timeoutMs) });
    const description = this.transport.description;
    try {
      const handlers = { message: (m: QmpMessage) => this.onMessage(m), takeReply: (line: string) => this.onReplyLine(line), failed: (id: string, e: Error) => this.table.fail(id, e), protocolError: (e: Error) => this.onProtocolError(e), closed: (r: Error | undefined) => this.onTransportClosed(r) };
      await withDeadline(deadline(`connect to ${description}`, this.options.connectTimeoutMs ?? opt.DEFAULT_CONNECT_TIMEOUT_MS), (signal) => this.transport.open(handlers, signal));
      if ((this.state as Runstate) === 'closed') throw this.closeError ?? new QmpClosedError('closed while connecting');
      this.setState('negotiating');
      const g = await withDeadline(deadline(`QMP handshake with ${description}`, this.options.handshakeTimeoutMs ?? opt.DEFAULT_HANDSHAKE_TIMEOUT_MS), async (signal) => {
        const g = await abortable(greeting, signal);
        this.greetingValue = g;
        const wantOob = this.options.oob === true && this.transport.capabilities.oob;
        if (this.transport.capabilities.preNegotiated) this.oob = wantOob && g.capabilities.includes('oob');
        else this.oob = (await negotiate(g, { oob: wantOob, run: (args) => this.table.submit('qmp_capabilities', args, { signal, timeoutMs: 0 }) })).oob;
        return g;
      });
      this.setState('running');
      return g;
    } catch (err) {
      this.greetingWaiter = undefined;
      await this.shutdown(err instanceof QmpClosedError ? err : new QmpClosedError(`open failed: ${errorMessage(err)}`, { cause: err }));
      throw err;
    }
  }

  /**
   * Runs a command and resolves to its `return` value. On a typed client only the map's command names
   * compile (use executeUnchecked for others). Rejects with QmpCommandError (QEMU said no),
   * QmpTimeoutError, QmpClosedError, the signal's reason, a validator's error, or the transport's own.
   */
  execute<K extends CommandName<C>>(command: K, ...rest: ExecuteRest<C, K, O>): Promise<CommandReturn<C, K>> {
    const [args, options] = rest as unknown as [Record<string, unknown> | undefined, (ExecuteOptions & O) | undefined];
    return this.run(command, args, options ?? ({} as ExecuteOptions & O)) as Promise<CommandReturn<C, K>>;
  }

  /**
   * The escape hatch: any command name, unchecked by the type system (validators still run), result
   * `unknown`. For commands newer than the map the client was typed with, or names known only at run time.
   */
  executeUnchecked(command: string, args?: Record<string, unknown>, options?: ExecuteOptions & O): Promise<unknown> {
    return this.run(command, args, options ?? ({} as ExecuteOptions & O));
  }

  /**
   * execute() for relays such as the proxy: the outcome goes to `settler` instead of a promise (a
   * settler with `resolveText` gets the reply's value as QEMU wrote it, when the transport reads text
   * lines: the reply is then not parsed). Same
   * checks, validators and command table; with only synchronous validators and none that checks
   * replies, no promise, closure or abort listener is made per command. `options.signal` only stops
   * a command that has not been sent yet: once sent, the settler hears how it ended.
   */
  executeTo(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions & O, settler: CommandSettler): void {
    const validators = this.validators;
    let verdict: void | Promise<void>;
    const call: CommandCall<O> | undefined = validators.length === 0 ? undefined : { command, args, options };
    try {
      this.checkCall(command, args, options);
      verdict = call === undefined ? undefined : validateAll(validators, call);
    } catch (err) {
      settler.reject(err);
      return;
    }
    if (!verdict) return this.submitTo(command, args, options, call, settler);
    verdict.then(
      () => {
        // An async validator took its time: the relay's client may have gone, or the connection closed.
        if (options.signal?.aborted) settler.reject(options.signal.reason ?? new Error('aborted'));
        else if (this.state !== 'running') settler.reject(this.closeError ?? new QmpClosedError(`client is ${this.state}`));
        else this.submitTo(command, args, options, call, settler);
      },
      (err: unknown) => settler.reject(err),
    );
  }

  /** executeTo's command, validated: straight to the settler, or through the validators' reply checks when one needs the reply. */
  private submitTo(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions & O, call: CommandCall<O> | undefined, settler: CommandSettler): void {
    const checking = call && this.checksReplies ? this.validators.filter((v) => v.checkReply && (v.checksReply?.(call) ?? true)) : [];
    if (checking.length === 0) return this.table.submitTo(command, args, options, settler);
    this.table
      .submit(command, args, options)
      .then((value) => checkReplies(checking, call!, value))
      .then(
        (value) => settler.resolve(value),
        (err: unknown) => settler.reject(err),
      );
  }

  /** Runs an HMP command line through `human-monitor-command` and resolves to its text output. */
  async hmp(commandLine: string, options: ExecuteOptions & O = {} as ExecuteOptions & O): Promise<string> {
    if (typeof commandLine !== 'string' || commandLine.trim() === '') throw new InvalidArgumentError('hmp: commandLine must be a non-empty string', { hint: 'e.g. client.hmp("info status")' });
    const out = await this.run('human-monitor-command', { 'command-line': commandLine }, options);
    return typeof out === 'string' ? out : '';
  }

  /** Async iterable of events through its own bounded queue; `break` (or return()) unsubscribes. */
  events(options?: EventsOptions<string, AnyEvent<E>> & { names?: undefined }): BoundedQueue<AnyEvent<E>>;
  events<N extends EventName<E>>(options: EventsOptions<N, EventOf<E, N>> & { names: readonly N[] }): BoundedQueue<EventOf<E, N>>;
  events(options: EventsOptions<string, never> = {}): unknown {
    return this.hub.events(options as EventsOptions<string, AnyEvent<E>>);
  }

  /** Waits for the next event called `name` (and accepted by `match`). */
  waitForEvent<N extends EventName<E>>(name: N, options: WaitForEventOptions<EventOf<E, N>> = {}): Promise<EventOf<E, N>> {
    return this.hub.startWait(name, options).promise;
  }

  /** Subscribes first, then runs the command, then waits for the event: no race between the two. */
  executeAndWait<K extends CommandName<C>, N extends EventName<E>>(
    command: K,
    args: ExecuteRest<C, K, O>[0],
    eventMatch: EventMatch<N, EventOf<E, N>>,
    options: ExecuteOptions & O = {} as ExecuteOptions & O,
  ): Promise<{ result: CommandReturn<C, K>; event: EventOf<E, N> }> {
    return this.hub.runAndWait(eventMatch, () => this.run(command, args as Record<string, unknown> | undefined, options) as Promise<CommandReturn<C, K>>);
  }

  on(type: 'event', listener: (event: AnyEvent<E>) => void): () => void;
  on<N extends EventName<E>>(type: 'event', listener: (event: EventOf<E, N>) => void, options: { names: readonly N[] }): () => void;
  on(type: 'runstate', listener: (state: Runstate, previous: Runstate) => void): () => void;
  /** Invalid or oversized messages from the peer (the stream stays in sync). */
  on(type: 'protocolError', listener: (err: Error) => void): () => void;
  on(type: 'event' | 'runstate' | 'protocolError', listener: (...a: never[]) => void, options?: { names?: readonly string[] }): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError(`on("${type}"): listener must be a function`);
    if (type === 'event') return this.hub.on(listener as (e: unknown) => void, options?.names);
    if (type === 'runstate') return this.runstates.on(listener as (s: Runstate, p: Runstate) => void);
    if (type !== 'protocolError') throw new InvalidArgumentError(`on: unknown notification "${String(type)}"`, { hint: 'use "event", "runstate" or "protocolError"' });
    const fn = listener as (e: Error) => void;
    this.protocolErrorListeners.add(fn);
    return () => this.protocolErrorListeners.delete(fn);
  }

  /** Resolves when the client reaches `state` (or rejects on timeout/abort). */
  waitForRunstate(state: Runstate, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    return this.runstates.waitFor(state, options.timeoutMs ?? this.defaultTimeoutMs, options.signal);
  }

  /** Closes the connection; every pending call rejects with QmpClosedError. Idempotent. */
  async close(): Promise<void> {
    await this.shutdown(new QmpClosedError('closed by the client', { hint: 'the client was closed on purpose; do not use it afterwards' }), true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- a command's way: checks, validators, the table, reply checks ------------------------------

  private run(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions & O): Promise<unknown> {
    try {
      this.checkCall(command, args, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const validators = this.validators;
    if (validators.length === 0) return this.table.submit(command, args, options);
    const call: CommandCall<O> = { command, args, options };
    return runThrough(validators, call, () => this.table.submit(command, args, options), () => this.submitLater(call));
  }

  /** After an async validator: the caller may have aborted, or the connection closed, meanwhile. */
  private submitLater({ command, args, options }: CommandCall<O>): Promise<unknown> {
    options.signal?.throwIfAborted();
    if (this.state !== 'running') return Promise.reject(this.closeError ?? new QmpClosedError(`client is ${this.state}`));
    return this.table.submit(command, args, options);
  }

  private checkCall(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions): void {
    opt.checkCallInput(command, args, options, this.oob, this.transport);
    if (this.state === 'closed' || this.state === 'closing') throw this.closeError ?? new QmpClosedError(`client is ${this.state}`);
    if (this.state !== 'running') throw new QmpStateError(`execute(${command}) called in runstate "${this.state}"`, { hint: 'await client.open() (or QmpClient.connect) before executing commands' });
  }

  // ---- receiving -------------------------------------------------------------------------------

  /** A reply line before parsing: a relay's command (executeTo) takes its value as text, unparsed. */
  private onReplyLine(line: string): boolean {
    // The traffic hook sees every message, parsed.
    return this.options.onTraffic === undefined && this.table.takeReplyLine(line);
  }

  private onMessage(msg: QmpMessage): void {
    this.traffic('in', msg);
    if (typeof msg.event === 'string') this.hub.dispatch(msg);
    else if ('return' in msg || 'error' in msg) {
      const unmatched = this.table.reply(msg);
      if (unmatched) this.onProtocolError(unmatched);
    } else if ('QMP' in msg) this.onGreeting(msg);
    else this.options.logger?.warn?.('dropped a QMP message that is neither reply, event nor greeting', { keys: Object.keys(msg) });
  }

  private onGreeting(msg: QmpMessage): void {
    if (!this.greetingWaiter?.offer(msg)) this.options.logger?.warn?.('dropped an unexpected QMP greeting');
    this.greetingWaiter = undefined;
  }

  private onProtocolError(err: Error): void {
    this.options.logger?.warn?.(err.message);
    // A reply too large to keep: its caller learns why now instead of at its timeout.
    if (err instanceof MessageTooLargeError && err.id !== undefined) this.table.fail(err.id, err);
    notifyAll(this.protocolErrorListeners, [err], this.options.logger, 'a protocolError listener threw');
  }

  private onTransportClosed(reason: Error | undefined): void {
    const description = this.transport.description;
    const err = new QmpClosedError(reason ? `${description}: ${reason.message}` : `${description} closed by the peer`, reason ? { cause: reason } : undefined);
    void this.shutdown(this.closeError ?? err);
  }

  // ---- state and teardown ---------------------------------------------------------------------

  private get state(): Runstate {
    return this.runstates.current;
  }

  private setState(next: Runstate): void {
    this.runstates.set(next);
  }

  private shutdown(err: QmpClosedError, byClient = false): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.closeError = err;
    if (this.state !== 'idle') this.setState('closing');
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    this.table.close(err);
    // Subscribers end quietly on a deliberate close and with the error when the connection dropped.
    this.hub.end(err, byClient);
    this.closedPromise = this.transport
      .close(byClient ? undefined : err)
      .catch(() => {})
      .then(() => this.setState('closed'));
    return this.closedPromise;
  }

}

