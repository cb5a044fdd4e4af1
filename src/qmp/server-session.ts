/**
 * The server side of one QMP connection, answering like QEMU 7.2's monitor: greeting, capabilities
 * negotiation, input read as a JSON stream (see json-streamer.ts), QEMU's error replies for malformed
 * input, each carrying the client's `id` exactly when QEMU's would. Commands themselves are the
 * caller's business (`hooks.execute`): the proxy relays them, the fake server scripts them.
 *
 * A client can only hurt its own session: input is parsed without recursion and within QEMU's
 * limits, a hook that throws becomes an error reply, unread output past a bound drops the client,
 * and a client with `maxPending` commands unanswered is not read from until one is answered.
 */
import { closeSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { JsonStreamer, type JsonStreamItem, type JsonStreamLimits } from './json-streamer.js';
import { capabilitiesArgsProblem, isPlainObject, replyText, requestProblem, returnReplyText, type QmpServerReply } from './server-replies.js';
import type { QmpMessage } from './transport.js';

export interface QmpServerRequest {
  readonly command: string;
  readonly args: Record<string, unknown> | undefined;
  /** Sent with `exec-oob` (oob negotiated). */
  readonly oob: boolean;
  readonly hasId: boolean;
  /** The client's id as a JS value (for display and matching; replies use `idJson`). */
  readonly id: unknown;
  /** The id exactly as QEMU writes it back (64-bit integers stay exact). */
  readonly idJson: string | undefined;
  /** The whole parsed input object. */
  readonly message: QmpMessage;
  /** File descriptors that arrived with this command's bytes (SCM_RIGHTS). The hook owns them. */
  readonly fds: readonly number[];
}

export type { QmpServerReply } from './server-replies.js';

/**
 * One command's answer, handed to the `dispatch` hook: it answers once, whenever it is ready; the session
 * puts the reply in its place in request order. Later answers are ignored.
 */
export interface QmpServerCall {
  /** Answers with `reply`; undefined: no reply, ever (the command still leaves the client's pending count). */
  reply(reply: QmpServerReply | undefined): void;
  /** Answers `{"return": VALUE}` with VALUE's JSON text as given (a relay passing QEMU's own on). */
  replyReturnText(valueJson: string): void;
  /** Aborts when the session has closed: nobody will read the answer. */
  readonly signal: AbortSignal;
}

export interface QmpServerSessionHooks {
  /**
   * Runs a command of a negotiated client. Resolves with its reply, or undefined for none (ever).
   * Give this or `dispatch`.
   */
  execute?(request: QmpServerRequest, signal: AbortSignal): QmpServerReply | undefined | Promise<QmpServerReply | undefined>;
  /**
   * Runs a command of a negotiated client and answers through `call` (a relay's way: no promise per
   * command). Used instead of `execute` when given; a throw becomes an error reply, as in `execute`.
   */
  dispatch?(request: QmpServerRequest, call: QmpServerCall): void;
  /**
   * Answers a valid `qmp_capabilities` before negotiation (default `{ return: {} }`): a scripted
   * server may do something first. An error reply leaves the session unnegotiated.
   */
  capabilities?(request: QmpServerRequest): QmpServerReply | undefined | Promise<QmpServerReply | undefined>;
  /** Every well-formed request, negotiation included, before it is handled. */
  observe?(request: QmpServerRequest): void;
  /** The session ended (either side, or dropped); called once. */
  closed?(reason: string): void;
  log?(level: 'debug' | 'info' | 'warn', message: string, details?: Record<string, unknown>): void;
}

export interface QmpServerSessionOptions {
  /** Sent on connect; undefined: the owner greets (or deliberately never does). */
  greeting: QmpMessage | undefined;
  /** `oob` may be enabled by qmp_capabilities. */
  oobOffered: boolean;
  /** In-band requests awaiting their reply before input is no longer read (default 8, QMP's own advice). */
  maxPending?: number;
  /** Replies leave in request order, as QEMU's (default true); false: as soon as each is ready. */
  ordered?: boolean;
  /** Unread output allowed before the client is dropped (default 16 MiB). */
  maxOutputBytes?: number;
  /** Parser limits (default QEMU's). */
  limits?: Partial<JsonStreamLimits>;
  /**
   * false: the owner reads the socket itself (recvmsg, to get fds) and feeds `receive()`/`endInput()`,
   * checking `wantsInput` before reading; the session then never reads, pauses or resumes the socket.
   */
  readsSocket?: boolean;
}

const DEFAULT_MAX_PENDING = 8;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** A reply slot in request order; `text` is set when the reply is ready ('' for none). */
interface Slot {
  text: string | undefined;
}

type Work = { item: JsonStreamItem; fds: number[] };

/** No fds came with a command (shared, so frozen). */
const NO_FDS = Object.freeze([]) as unknown as number[];

/** A request handed to a hook, until it is answered: its slot in the reply order when it has one. */
class ServerCall implements QmpServerCall, Slot {
  text: string | undefined = undefined;
  private answered = false;

  constructor(
    private readonly session: QmpServerSession,
    readonly idJson: string | undefined,
    /** Its reply waits for the ones before it (in-band, ordered session). */
    readonly inOrder: boolean,
    /** Runs with the reply before it is sent (negotiation undoes itself on an error). */
    private readonly before?: (reply: QmpServerReply | undefined) => void,
  ) {}

  get signal(): AbortSignal {
    return this.session.goneSignal;
  }

  reply(reply: QmpServerReply | undefined): void {
    if (this.answered) return;
    this.answered = true;
    this.before?.(reply);
    this.session.settle(this, reply === undefined ? '' : replyText(reply, this.idJson));
  }

  replyReturnText(valueJson: string): void {
    if (this.answered) return;
    this.answered = true;
    this.before?.({ return: undefined });
    this.session.settle(this, returnReplyText(valueJson, this.idJson));
  }
}

export class QmpServerSession {
  private negotiatedFlag = false;
  private oobFlag = false;
  private closedReason: string | undefined;
  private readonly streamer: JsonStreamer;
  private readonly slots: Slot[] = [];
  /** Requests answered by hooks and not yet settled (unordered mode's measure of load). */
  private running = 0;
  /** Parsed items waiting while the client is at its pending limit (at most one read's worth). */
  private readonly backlog: Work[] = [];
  private paused = false;
  private inputEnded = false;
  private readonly gone = new AbortController();
  private readonly maxPending: number;
  private readonly ordered: boolean;
  private readonly maxOutputBytes: number;
  /**
   * Fds received and not taken yet: they go to the first command completed after they arrived (its
   * bytes may span several reads); fds arriving while older ones wait replace them, as in QEMU.
   */
  private waitingFds: number[] = [];
  private readonly readsSocket: boolean;

  constructor(
    readonly socket: Duplex,
    private readonly options: QmpServerSessionOptions,
    private readonly hooks: QmpServerSessionHooks,
  ) {
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.ordered = options.ordered ?? true;
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    this.readsSocket = options.readsSocket ?? true;
    if (typeof hooks?.execute !== 'function' && typeof hooks?.dispatch !== 'function') throw new TypeError('QmpServerSession: hooks need execute or dispatch');
    this.streamer = new JsonStreamer((item) => this.onItem(item), options.limits);
    if (this.readsSocket) {
      socket.on('data', (chunk: Buffer | string) => this.receive(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
      // A client may send its commands and shut its side (`echo … | socat`): answer them, then close.
      socket.on('end', () => this.endInput());
    }
    socket.on('error', (err: Error) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('client disconnected'));
    if (options.greeting) this.write(`${JSON.stringify(options.greeting)}\r\n`);
  }

  get isNegotiated(): boolean {
    return this.negotiatedFlag && this.closedReason === undefined;
  }

  get oobEnabled(): boolean {
    return this.oobFlag;
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  /** @internal aborts once the session has closed */
  get goneSignal(): AbortSignal {
    return this.gone.signal;
  }

  /** In-band requests not answered yet (ordered) or hook calls running (unordered). */
  get pendingCount(): number {
    return this.ordered ? this.slots.length : this.running;
  }

  /**
   * Feeds input bytes; `fds` arrived with them (SCM_RIGHTS) and go with the first command they complete.
   * For owners that read the socket themselves (fd passing); the session reads `data` events otherwise.
   */
  receive(chunk: Buffer, fds: number[] = []): void {
    if (this.closedReason !== undefined) return closeFds(fds);
    if (fds.length > 0) {
      closeFds(this.waitingFds);
      this.waitingFds = fds;
    }
    try {
      this.streamer.push(chunk);
    } catch (err) {
      // The streamer has no known way to throw; if it ever does, this client alone pays.
      this.hooks.log?.('warn', `QMP session input failed: ${err instanceof Error ? err.message : String(err)}`);
      this.close('input could not be parsed');
    }

  }

  /** The client shut its sending side: answer what it sent, then close. */
  endInput(): void {
    this.inputEnded = true;
    this.maybeFinish();
  }

  /** The session takes more input now (false while the client is at its pending limit, or closed). */
  get wantsInput(): boolean {
    return !this.paused && this.closedReason === undefined;
  }

  /** Sends an event (only once negotiated, as QEMU does). */
  sendEvent(msg: QmpMessage): void {
    if (this.negotiatedFlag) this.write(`${JSON.stringify(msg)}\r\n`);
  }

  /** Writes one message as is (for scripted servers). */
  send(msg: QmpMessage): void {
    this.write(`${JSON.stringify(msg)}\r\n`);
  }

  /** Closes the session; `graceful` lets written replies flush first. */
  close(reason: string, graceful = false): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.gone.abort(new Error(`QMP session closed: ${reason}`));
    for (const w of this.backlog.splice(0)) closeFds(w.fds);
    closeFds(this.waitingFds);
    this.waitingFds = [];
    if (graceful) {
      // Once our replies are flushed the socket is done (a socket read by recvmsg would never see EOF itself).
      this.socket.end(() => this.socket.destroy());
      // a peer that never reads must not keep the socket forever
      setTimeout(() => this.socket.destroy(), 5000).unref();
    } else this.socket.destroy();
    try {
      this.hooks.closed?.(reason);
    } catch {
      // the owner's bookkeeping must not break the close
    }
  }

  private write(text: string): void {
    if (this.closedReason !== undefined) return;
    this.socket.write(text);
    const buffered = this.socket.writableLength;
    if (buffered > this.maxOutputBytes) {
      this.hooks.log?.('warn', `dropping QMP client: it is not reading (${buffered} bytes unread, limit ${this.maxOutputBytes})`, { buffered });
      this.close('dropped: not reading its output');
    }
  }

  private onItem(item: JsonStreamItem): void {
    let fds = NO_FDS;
    if (this.waitingFds.length > 0 && item.ok && isCommandLike(item.value)) {
      fds = this.waitingFds;
      this.waitingFds = [];
    }
    if (this.paused) this.backlog.push({ item, fds });
    else this.handleOwningFds(item, fds);
  }

  /** Handles one item; fds that did not reach a command hook are closed. */
  private handleOwningFds(item: JsonStreamItem, fds: number[]): void {
    if (!this.handle(item, fds) && fds.length > 0) closeFds(fds);
  }

  /** Returns whether the item's fds were handed to the execute hook. */
  private handle(item: JsonStreamItem, fds: number[]): boolean {
    if (!item.ok) return this.refuse(item.desc, 'GenericError', undefined, false);
    const value = item.value;
    if (!isPlainObject(value)) return this.refuse('QMP input must be a JSON object', 'GenericError', undefined, false);
    const msg = value as QmpMessage;
    const idJson = item.idJson;
    // QEMU runs `exec-oob` without `execute` at once, outside the in-band queue, even when it then refuses it.
    const outOfBand = 'exec-oob' in msg && !('execute' in msg);

    const problem = requestProblem(msg, this.oobFlag);
    if (problem) return this.refuse(problem, 'GenericError', idJson, outOfBand);
    const command = (outOfBand ? msg['exec-oob'] : msg.execute) as string;
    const request: QmpServerRequest = {
      command,
      args: msg.arguments as Record<string, unknown> | undefined,
      oob: outOfBand,
      hasId: 'id' in msg,
      id: msg.id,
      idJson,
      message: msg,
      fds,
    };
    if (this.hooks.observe) this.observe(request);

    if (!this.negotiatedFlag) {
      if (command !== 'qmp_capabilities') return this.refuse("Expecting capabilities negotiation with 'qmp_capabilities'", 'CommandNotFound', idJson, outOfBand);
      const problem = this.negotiate(request.args);
      if (problem) return this.refuse(problem, 'GenericError', idJson, outOfBand);
      const capabilities = this.hooks.capabilities;
      if (!capabilities) return this.answer({ return: {} }, idJson, outOfBand);
      const previousOob = this.oobFlag;
      const call = this.start(idJson, outOfBand, (reply) => {
        if (reply && 'error' in reply) {
          this.negotiatedFlag = false;
          this.oobFlag = previousOob;
        }
      });
      this.runHook(call, command, () => capabilities.call(this.hooks, request));
      return false;
    }
    if (command === 'qmp_capabilities') {
      const argProblem = capabilitiesArgsProblem(request.args);
      return this.refuse(argProblem ?? 'Capabilities negotiation is already complete, command ignored', argProblem ? 'GenericError' : 'CommandNotFound', idJson, outOfBand);
    }
    const call = this.start(idJson, outOfBand);
    const dispatch = this.hooks.dispatch;
    if (dispatch) {
      try {
        dispatch.call(this.hooks, request, call);
      } catch (err) {
        this.failed(call, command, err);
      }
    } else {
      this.runHook(call, command, () => this.hooks.execute!(request, this.gone.signal));
    }
    return true;
  }

  /** Answers a request the session itself refuses (QEMU's checks); its fds, if any, are not taken. */
  private refuse(desc: string, cls: string, idJson: string | undefined, outOfBand: boolean): false {
    return this.answer({ error: { class: cls, desc } }, idJson, outOfBand);
  }

  private answer(reply: QmpServerReply, idJson: string | undefined, outOfBand: boolean): false {
    if (outOfBand) this.answerNow(reply, idJson);
    else this.answerInBand(reply, idJson);
    return false;
  }

  private observe(request: QmpServerRequest): void {
    try {
      this.hooks.observe?.(request);
    } catch (err) {
      this.hooks.log?.('warn', `QMP session hook failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** qmp_capabilities before negotiation: only what the greeting offered. Returns an error description, or undefined. */
  private negotiate(args: Record<string, unknown> | undefined): string | undefined {
    const problem = capabilitiesArgsProblem(args);
    if (problem) return problem;
    const enable = (args?.enable as string[] | undefined) ?? [];
    if (enable.includes('oob') && !this.options.oobOffered) return "Capability 'oob' not available";
    this.oobFlag = enable.includes('oob');
    this.negotiatedFlag = true;
    return undefined;
  }

  /** A request goes to a hook: it takes its place in the reply order and counts against the pending limit. */
  private start(idJson: string | undefined, outOfBand: boolean, before?: (reply: QmpServerReply | undefined) => void): ServerCall {
    const call = new ServerCall(this, idJson, !outOfBand && this.ordered, before);
    if (call.inOrder) this.slots.push(call);
    this.running++;
    this.checkLoad();
    return call;
  }

  /** Runs a hook that answers by returning (or resolving to) its reply; a throwing hook becomes an error reply, never a crash. */
  private runHook(call: ServerCall, command: string, hook: () => QmpServerReply | undefined | Promise<QmpServerReply | undefined>): void {
    let result: QmpServerReply | undefined | Promise<QmpServerReply | undefined>;
    try {
      result = hook();
    } catch (err) {
      return this.failed(call, command, err);
    }
    if (result instanceof Promise) {
      result.then(
        (reply) => call.reply(reply),
        (err: unknown) => this.failed(call, command, err),
      );
    } else call.reply(result);
  }

  private failed(call: ServerCall, command: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.hooks.log?.('warn', `QMP command ${command} failed inside the server: ${message}`);
    call.reply({ error: { class: 'GenericError', desc: `internal error: ${message}` } });
  }

  /** @internal a hook answered `call`: its reply leaves now, or when the ones before it have. */
  settle(call: ServerCall, text: string): void {
    this.running--;
    if (call.inOrder) this.fill(call, text);
    else if (text) this.write(text);
    this.afterSettle();
  }

  private answerNow(reply: QmpServerReply, idJson: string | undefined): void {
    this.write(replyText(reply, idJson));
  }

  private answerInBand(reply: QmpServerReply, idJson: string | undefined): void {
    if (!this.ordered || this.slots.length === 0) return this.write(replyText(reply, idJson));
    this.slots.push({ text: replyText(reply, idJson) });
    this.checkLoad();
  }

  /** Fills a slot and writes every ready reply at the head, in order. A reply that never comes holds the rest, as in QEMU. */
  private fill(slot: Slot, text: string): void {
    slot.text = text;
    while (this.slots.length > 0 && this.slots[0]!.text !== undefined) {
      const t = this.slots.shift()!.text!;
      if (t) this.write(t);
    }
  }

  /** At the pending limit: stop reading (backpressure, as QEMU suspends its monitor) instead of queueing without bound. */
  private checkLoad(): void {
    if (!this.paused && this.pendingCount >= this.maxPending) {
      this.paused = true;
      if (this.readsSocket) this.socket.pause();
    }
  }

  private afterSettle(): void {
    if (this.closedReason !== undefined) return;
    if (this.paused && this.pendingCount < this.maxPending) {
      this.paused = false;
      while (!this.paused && this.backlog.length > 0 && this.closedReason === undefined) {
        const work = this.backlog.shift()!;
        this.handleOwningFds(work.item, work.fds);
      }
      if (this.closedReason !== undefined) return;
      if (!this.paused && this.readsSocket) this.socket.resume();
    }
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.inputEnded && this.running === 0 && this.slots.length === 0 && this.backlog.length === 0) this.close('client finished', true);
  }

}

function isCommandLike(v: unknown): boolean {
  return isPlainObject(v) && ('execute' in v || 'exec-oob' in v);
}

function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
