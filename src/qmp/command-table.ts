import { errorMessage } from '../common/abort.js';
import type { ExecuteOptions } from './command-map.js';
import { DeadlineTimer, monotonicNow } from './deadline-timer.js';
import { FdPassingError, MessageTooLargeError, QmpClosedError, QmpCommandError, QmpProtocolError, QmpTimeoutError } from './errors.js';
import { replyLineParts } from './framing.js';
import type { QmpLogger } from './logger.js';
import type { QmpMessage, SendOptions } from './transport.js';

/**
 * Where a command's outcome goes: a promise's resolve/reject, or a relay's own object (the proxy's,
 * which then needs no promise, closure or abort listener per command).
 */
export interface CommandSettler {
  /** The reply's `return` value. */
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /**
   * Optional: takes the `return` value as the text the peer wrote, instead of `resolve`. The reply
   * line is then not parsed at all (a relay passes it on as is: 64-bit integers and member order stay exact).
   */
  resolveText?(returnText: string): void;
}


/** A command from submit() until it settles. A class, not closures: one allocation per command. */
class Pending {
  sent = false;
  settler!: CommandSettler;
  /** Only set when the caller passed a signal. */
  onAbort: (() => void) | undefined;
  /** File descriptors that go with the command (SCM_RIGHTS). */
  fds: readonly number[] | undefined;
  /** Commands with another key may run beside this one, on transports that can. */
  orderingKey: object | undefined;

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

export interface CommandTableOptions {
  /** In-band commands on the wire at once; the rest wait in order. */
  maxInFlight: number;
  /** Per-command timeout when the call gives none (0 = none). */
  defaultTimeoutMs: number;
  /** The transport runs commands with different ordering keys side by side (else keys are not passed on). */
  usesOrderingKeys?: boolean;
  /** Puts one message on the wire (with fds when given); throws when it cannot. */
  send(message: QmpMessage, options?: SendOptions): void;
  logger?: QmpLogger | undefined;
}

/**
 * The commands of one connection between submit and their reply: ids, the in-flight cap with its
 * queue, deadlines (one timer for all) and abort signals. A caller that gives up (timeout, abort)
 * stops waiting, but a sent command's id stays reserved, and its in-flight slot taken, until QEMU's
 * late reply arrives: the peer is still working on it.
 */
export class CommandTable {
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  /** Ids whose caller gave up after they were sent: their late replies are dropped quietly; value = was oob. */
  private readonly reserved = new Map<string, boolean>();
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private closed = false;
  private readonly deadlines = new DeadlineTimer((now) => this.expireDeadlines(now));

  constructor(private readonly options: CommandTableOptions) {}

  /** Commands sent and not yet answered (including those whose callers gave up), plus queued ones. */
  get size(): number {
    return this.pending.size + this.reserved.size;
  }

  /** Creates the pending entry and sends it now, or queues it behind the in-flight cap. */
  submit(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => this.enter(command, args, options, { resolve, reject }, true));
  }

  /**
   * submit() for relays: the outcome goes to `settler`, no promise is made. `options.signal` only stops a
   * command that has not been sent yet (checked now and when it leaves the queue); once sent, the
   * settler hears its reply (or its deadline, or the connection's end) like any other command.
   */
  submitTo(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions, settler: CommandSettler): void {
    this.enter(command, args, options, settler, false);
  }

  private enter(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions, settler: CommandSettler, listen: boolean): void {
    // Short decimal strings: QEMU 7.2 answers measurably later the longer the id is (see bench/qmp.bench.ts).
    const id = String(this.nextId++);
    const oob = options.oob === true;
    const message: QmpMessage = oob ? { 'exec-oob': command } : { execute: command };
    if (args !== undefined) message.arguments = args;
    message.id = id;
    const timeoutMs = options.timeoutMs ?? this.options.defaultTimeoutMs;
    const signal = options.signal;
    const p = new Pending(id, command, message, oob, timeoutMs, timeoutMs > 0 ? monotonicNow() + timeoutMs : Infinity, signal);
    if (options.fds?.length) p.fds = [...options.fds];
    if (this.options.usesOrderingKeys) p.orderingKey = options.orderingKey;
    p.settler = settler;
    if (p.deadline !== Infinity) this.deadlines.ensure(p.deadline);
    if (signal && listen) {
      p.onAbort = () => this.giveUp(p, signal.reason ?? new Error('aborted'));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.pending.set(id, p);
    if (oob || this.inFlight < this.options.maxInFlight) this.transmit(p);
    else this.queue.push(p);
  }

  /**
   * Settles the command a reply answers. A reply nobody waits for is logged and dropped; the one
   * case that means something is returned: an error without an id (QEMU could not parse a message).
   */
  reply(msg: QmpMessage): QmpProtocolError | undefined {
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = this.claim(id);
    if (p === 'abandoned') return undefined;
    if (!p) {
      if (msg.id === undefined && 'error' in msg) {
        const e = msg.error as { class?: unknown; desc?: unknown } | undefined;
        const hint = 'QEMU could not parse something it received on this monitor';
        return new QmpProtocolError(`QEMU reported an error without an id: ${String(e?.class)}: ${String(e?.desc)}`, { hint });
      }
      this.options.logger?.warn?.('dropped a reply with an unknown id', { id: msg.id });
      return undefined;
    }
    if ('error' in msg) {
      const e = (msg.error ?? {}) as { class?: unknown; desc?: unknown };
      p.settler.reject(new QmpCommandError(String(e.class ?? 'GenericError'), String(e.desc ?? ''), p.command, p.id));
    } else {
      p.settler.resolve(msg.return);
    }
    return undefined;
  }

  /**
   * A reply line in QEMU's layout, `{"return": VALUE, "id": "ID"}` with the id last, for a command whose
   * settler takes text: settles it with VALUE's text, unparsed. False for any other line (parse it).
   */
  takeReplyLine(line: string): boolean {
    const parts = replyLineParts(line);
    // Only our own ids (decimal strings) are in the table, so a hit means the id is exactly that.
    const p = parts && this.pending.get(parts.id);
    if (!p || !p.settler.resolveText) return false;
    this.claim(p.id);
    p.settler.resolveText(parts.returnText);
    return true;
  }

  /** The command with this id gets no reply (the transport said so, or its reply was skipped): rejects it with `error`. */
  fail(id: string, error: Error): void {
    const p = this.claim(id);
    if (p !== undefined && p !== 'abandoned') p.settler.reject(error);
  }

  /** The connection is gone: every command rejects with `error`, and nothing is sent any more. */
  close(error: Error): void {
    this.closed = true;
    const all = [...this.pending.values()];
    this.pending.clear();
    this.deadlines.stop();
    this.queue.length = 0;
    this.reserved.clear();
    this.inFlight = 0;
    for (const p of all) {
      p.cleanup();
      p.settler.reject(error);
    }
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
    try {
      if (p.fds || p.orderingKey) {
        const sendOptions: SendOptions = {};
        if (p.fds) sendOptions.fds = p.fds;
        if (p.orderingKey) sendOptions.orderingKey = p.orderingKey;
        this.options.send(p.message, sendOptions);
      } else this.options.send(p.message);
    } catch (err) {
      this.pending.delete(p.id);
      this.settled();
      if (!p.oob) this.inFlight--;
      p.cleanup();
      // A refusal before sending (an outbound size cap, fds the transport cannot carry) is the caller's
      // typed error, not a closed connection.
      const refused = err instanceof QmpClosedError || err instanceof MessageTooLargeError || err instanceof FdPassingError;
      p.settler.reject(refused ? err : new QmpClosedError(`sending ${p.command} failed: ${errorMessage(err)}`, { cause: err }));
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
    p.settler.reject(reason);
  }

  private releaseSlot(): void {
    this.inFlight--;
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0 && !this.closed) {
      const p = this.queue.shift()!;
      // A relay's command whose client left while it waited (submitTo has no abort listener).
      if (p.signal?.aborted && !p.onAbort) this.giveUp(p, p.signal.reason ?? new Error('aborted'));
      else this.transmit(p);
    }
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
}
