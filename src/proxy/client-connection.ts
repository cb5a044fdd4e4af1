/**
 * One client of the proxy, seen from the proxy: it gets a greeting, negotiates capabilities locally,
 * and then sends commands that the proxy relays. It speaks server-side QMP exactly like QEMU 7.2
 * (same error classes and descriptions for malformed input), so existing tools cannot tell the
 * difference. Its output is bounded: a client that stops reading is dropped, not buffered forever.
 */
import type { Socket } from 'node:net';
import { MessageFramer } from '../qmp/framing.js';
import { MessageTooLargeError } from '../qmp/errors.js';
import type { QmpMessage } from '../qmp/transport.js';
import type { QmpErrorBody } from './errors.js';

export interface ClientRequest {
  command: string;
  args: Record<string, unknown> | undefined;
  /** Sent with `exec-oob`. */
  oob: boolean;
  /** The client's own id, as it sent it (absent: the reply carries none). */
  hasId: boolean;
  id: unknown;
}

export interface ClientConnectionHooks {
  /**
   * Relay a negotiated client's command; settle with the reply's `return` or reject with the error.
   * `signal` aborts when the client is gone: commands still queued are then never sent.
   */
  execute(conn: ClientConnection, request: ClientRequest, signal: AbortSignal): Promise<unknown>;
  /** The connection is gone (closed by either side or dropped). */
  closed(conn: ClientConnection, reason: string): void;
  log(level: 'debug' | 'info' | 'warn', message: string, details?: Record<string, unknown>): void;
  toQmpError(err: unknown): QmpErrorBody;
}

export interface ClientConnectionOptions {
  greeting: QmpMessage;
  /** The backend can run exec-oob: offer `oob` to clients. */
  oobOffered: boolean;
  maxOutputBytes: number;
  maxPending: number;
  maxMessageBytes: number;
}

const ALLOWED_KEYS = new Set(['execute', 'exec-oob', 'arguments', 'id']);

export class ClientConnection {
  private negotiated = false;
  private oob = false;
  private closedReason: string | undefined;
  private pending = 0;
  private paused = false;
  private inputEnded = false;
  private readonly framer: MessageFramer;
  private readonly gone = new AbortController();

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly options: ClientConnectionOptions,
    private readonly hooks: ClientConnectionHooks,
  ) {
    this.framer = new MessageFramer(
      {
        message: (m) => this.onMessage(m),
        protocolError: (e) => this.onBadInput(e),
      },
      options.maxMessageBytes,
    );
    socket.on('data', (chunk: Buffer) => {
      if (this.closedReason === undefined) this.framer.push(chunk);
    });
    socket.on('error', (err: Error) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('client disconnected'));
    // A client may send its commands and shut its side (`echo … | socat`): answer them, then close.
    socket.on('end', () => {
      this.inputEnded = true;
      if (this.pending === 0 && this.backlog.length === 0) this.close('client finished', true);
    });
    this.send(options.greeting);
  }

  get isNegotiated(): boolean {
    return this.negotiated && this.closedReason === undefined;
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Commands relayed and not answered yet. */
  get pendingCount(): number {
    return this.pending;
  }

  /** Writes one message; drops the client when its unread output passes the bound. */
  send(msg: QmpMessage): void {
    if (this.closedReason !== undefined) return;
    this.socket.write(`${JSON.stringify(msg)}\r\n`);
    const buffered = this.socket.writableLength;
    if (buffered > this.options.maxOutputBytes) {
      this.hooks.log('warn', `dropping proxy client ${this.id}: it is not reading (${buffered} bytes unread, limit ${this.options.maxOutputBytes})`, {
        client: this.id,
        buffered,
      });
      this.close('dropped: not reading its output');
    }
  }

  /** Closes the connection; `graceful` lets written replies flush first. */
  close(reason: string, graceful = false): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.gone.abort(new Error(`proxy client ${this.id}: ${reason}`));
    if (graceful) {
      this.socket.end();
      // a peer that never reads must not keep the socket forever
      setTimeout(() => this.socket.destroy(), 5000).unref();
    } else this.socket.destroy();
    this.hooks.closed(this, reason);
  }

  private onBadInput(err: Error): void {
    // QEMU answers unparsable input with an id-less error and keeps the connection.
    const desc =
      err instanceof MessageTooLargeError
        ? `JSON parse error, message of ${err.receivedBytes} bytes exceeds the ${err.limitBytes}-byte limit`
        : /not an object/.test(err.message)
          ? 'QMP input must be a JSON object'
          : `JSON parse error, ${err.cause instanceof Error ? err.cause.message : err.message}`;
    this.send({ error: { class: 'GenericError', desc } });
  }

  /**
   * Messages parsed while the client is at its pending limit wait here, in order. Reading is paused
   * meanwhile, so this holds at most what one read delivered (the socket's 64 KiB buffer).
   */
  private readonly backlog: QmpMessage[] = [];

  private onMessage(msg: QmpMessage): void {
    if (this.paused) {
      this.backlog.push(msg);
      return;
    }
    this.handle(msg);
  }

  private handle(msg: QmpMessage): void {
    const hasId = 'id' in msg;
    const reply = (body: { return: unknown } | { error: QmpErrorBody }) => this.send(hasId ? { ...body, id: msg.id } : body);
    const fail = (cls: string, desc: string) => reply({ error: { class: cls, desc } });

    for (const key of Object.keys(msg)) {
      if (!ALLOWED_KEYS.has(key) || (key === 'exec-oob' && !this.oob)) return fail('GenericError', `QMP input member '${key}' is unexpected`);
    }
    const oob = 'exec-oob' in msg;
    if (oob && 'execute' in msg) return fail('GenericError', "QMP input member 'exec-oob' is unexpected");
    const command = oob ? msg['exec-oob'] : msg.execute;
    if (command === undefined) return fail('GenericError', "QMP input lacks member 'execute'");
    if (typeof command !== 'string') return fail('GenericError', `QMP input member '${oob ? 'exec-oob' : 'execute'}' must be a string`);
    const args = msg.arguments;
    if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
      return fail('GenericError', "QMP input member 'arguments' must be an object");
    }

    if (command === 'qmp_capabilities') {
      if (this.negotiated) return fail('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      const problem = this.negotiate(args as Record<string, unknown> | undefined);
      if (problem) return fail('GenericError', problem);
      return reply({ return: {} });
    }
    if (!this.negotiated) return fail('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");

    this.pending++;
    if (this.pending >= this.options.maxPending && !this.paused) {
      // Backpressure instead of an unbounded queue: read no more commands until some are answered.
      this.paused = true;
      this.socket.pause();
    }
    const request: ClientRequest = { command, args: args as Record<string, unknown> | undefined, oob, hasId, id: msg.id };
    this.hooks.execute(this, request, this.gone.signal).then(
      (value) => this.settle(() => reply({ return: value ?? {} })),
      (err: unknown) => this.settle(() => reply({ error: this.hooks.toQmpError(err) })),
    );
  }

  private settle(send: () => void): void {
    this.pending--;
    if (this.closedReason !== undefined) {
      this.hooks.log('debug', `dropped a reply for proxy client ${this.id}: it is gone`, { client: this.id });
      return;
    }
    send();
    if (this.paused && this.pending < this.options.maxPending) {
      this.paused = false;
      while (!this.paused && this.backlog.length > 0 && this.closedReason === undefined) this.handle(this.backlog.shift()!);
      if (this.closedReason !== undefined) return;
      if (!this.paused) this.socket.resume();
    }
    if (this.inputEnded && this.pending === 0 && this.backlog.length === 0) this.close('client finished', true);
  }

  /** qmp_capabilities's `enable`: only what the greeting offered. Returns an error description, or undefined. */
  private negotiate(args: Record<string, unknown> | undefined): string | undefined {
    for (const key of Object.keys(args ?? {})) if (key !== 'enable') return `Parameter '${key}' is unexpected`;
    const enable = args?.enable;
    let oob = false;
    if (enable !== undefined) {
      if (!Array.isArray(enable)) return "Invalid parameter type for 'enable', expected: array";
      for (const cap of enable) {
        if (cap !== 'oob') return `Parameter 'enable' does not accept value '${String(cap)}'`;
        if (!this.options.oobOffered) return "Capability 'oob' not available";
        oob = true;
      }
    }
    this.oob = oob;
    this.negotiated = true;
    return undefined;
  }
}
