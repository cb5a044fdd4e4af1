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
import { capabilitiesArgsProblem, isPlainObject, replyText, requestProblem, type QmpServerReply } from './server-replies.js';
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

export interface QmpServerSessionHooks {
  /** Runs a command of a negotiated client. Resolves with its reply, or undefined for none (ever). */
  execute(request: QmpServerRequest, signal: AbortSignal): QmpServerReply | undefined | Promise<QmpServerReply | undefined>;
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

/** A reply slot in request order; `text` is set when the reply is ready. */
interface Slot {
  text: string | undefined;
}

type Work = { item: JsonStreamItem; fds: number[] };

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
    const fds = this.waitingFds;
    if (item.ok && fds.length > 0 && isCommandLike(item.value)) this.waitingFds = [];
    const work: Work = { item, fds: item.ok && isCommandLike(item.value) ? fds : [] };
    if (this.paused) this.backlog.push(work);
    else this.handleOwningFds(work);
  }

  /** Handles one item; fds that did not reach a command hook are closed. */
  private handleOwningFds(work: Work): void {
    if (!this.handle(work)) closeFds(work.fds);
  }

  /** Returns whether the item's fds were handed to the execute hook. */
  private handle({ item, fds }: Work): boolean | void {
    if (!item.ok) return this.answerInBand({ error: { class: 'GenericError', desc: item.desc } }, undefined);
    const value = item.value;
    if (!isPlainObject(value)) return this.answerInBand({ error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } }, undefined);
    const msg = value as QmpMessage;
    const idJson = item.idJson;
    // QEMU runs `exec-oob` without `execute` at once, outside the in-band queue, even when it then refuses it.
    const outOfBand = 'exec-oob' in msg && !('execute' in msg);
    const answer = (reply: QmpServerReply) => (outOfBand ? this.answerNow(reply, idJson) : this.answerInBand(reply, idJson));
    const fail = (desc: string, cls = 'GenericError') => answer({ error: { class: cls, desc } });

    const problem = requestProblem(msg, this.oobFlag);
    if (problem) return fail(problem);
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
    this.guard(() => this.hooks.observe?.(request));

    if (!this.negotiatedFlag) {
      if (command !== 'qmp_capabilities') return fail("Expecting capabilities negotiation with 'qmp_capabilities'", 'CommandNotFound');
      const problem = this.negotiate(request.args);
      if (problem) return fail(problem);
      if (!this.hooks.capabilities) return answer({ return: {} });
      const previousOob = this.oobFlag;
      return this.run(request, outOfBand, () => this.hooks.capabilities!(request), (reply) => {
        if (reply && 'error' in reply) {
          this.negotiatedFlag = false;
          this.oobFlag = previousOob;
        }
      });
    }
    if (command === 'qmp_capabilities') {
      const argProblem = capabilitiesArgsProblem(request.args);
      return fail(argProblem ?? 'Capabilities negotiation is already complete, command ignored', argProblem ? 'GenericError' : 'CommandNotFound');
    }
    this.run(request, outOfBand, () => this.hooks.execute(request, this.gone.signal));
    return true;
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

  /** Runs a hook and answers with what it gives; a throwing hook becomes an error reply, never a crash. */
  private run(
    request: QmpServerRequest,
    outOfBand: boolean,
    call: () => QmpServerReply | undefined | Promise<QmpServerReply | undefined>,
    after?: (reply: QmpServerReply | undefined) => void,
  ): void {
    const slot = outOfBand || !this.ordered ? undefined : this.reserve();
    this.running++;
    this.checkLoad();
    const settle = (reply: QmpServerReply | undefined) => {
      this.running--;
      after?.(reply);
      if (slot) this.fill(slot, reply === undefined ? undefined : replyText(reply, request.idJson));
      else if (reply !== undefined) this.write(replyText(reply, request.idJson));
      this.afterSettle();
    };
    const failed = (err: unknown) => {
      this.hooks.log?.('warn', `QMP command ${request.command} failed inside the server: ${err instanceof Error ? err.message : String(err)}`);
      settle({ error: { class: 'GenericError', desc: `internal error: ${err instanceof Error ? err.message : String(err)}` } });
    };
    let result: QmpServerReply | undefined | Promise<QmpServerReply | undefined>;
    try {
      result = call();
    } catch (err) {
      return failed(err);
    }
    if (result instanceof Promise) result.then(settle, failed);
    else settle(result);
  }

  private answerNow(reply: QmpServerReply, idJson: string | undefined): void {
    this.write(replyText(reply, idJson));
  }

  private answerInBand(reply: QmpServerReply, idJson: string | undefined): void {
    if (!this.ordered || this.slots.length === 0) return this.write(replyText(reply, idJson));
    this.slots.push({ text: replyText(reply, idJson) });
    this.checkLoad();
  }

  private reserve(): Slot {
    const slot: Slot = { text: undefined };
    this.slots.push(slot);
    return slot;
  }

  /** Fills a slot and writes every ready reply at the head, in order. A reply that never comes holds the rest, as in QEMU. */
  private fill(slot: Slot, text: string | undefined): void {
    slot.text = text ?? '';
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
      while (!this.paused && this.backlog.length > 0 && this.closedReason === undefined) this.handleOwningFds(this.backlog.shift()!);
      if (this.closedReason !== undefined) return;
      if (!this.paused && this.readsSocket) this.socket.resume();
    }
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.inputEnded && this.running === 0 && this.slots.length === 0 && this.backlog.length === 0) this.close('client finished', true);
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.hooks.log?.('warn', `QMP session hook failed: ${err instanceof Error ? err.message : String(err)}`);
    }
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
