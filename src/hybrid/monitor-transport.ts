import { abortable, withDeadline } from '../common/abort.js';
import { InvalidArgumentError } from '../common/errors.js';
import { FdPassingError, MessageTooLargeError, QmpClosedError } from '../qmp/errors.js';
import { unixFdPassing } from '../../native/socket.js';
import { DEFAULT_MAX_MESSAGE_BYTES, replyLineParts } from '../qmp/framing.js';
import { GreetingWaiter, negotiate } from '../qmp/handshake.js';
import { StreamTransport } from '../qmp/stream-transport.js';
import type { QmpMessage, QmpTransport, SendOptions, TransportCapabilities, TransportHandlers } from '../qmp/transport.js';
import { MonitorDisconnectedError, MonitorUnavailableError } from './errors.js';
import { permissionDenied } from './stale-socket.js';

export type MonitorConnectionChange =
  | { type: 'disconnected'; at: Date; reason: string }
  | { type: 'reconnected'; at: Date; gapMs: number; path: string };

export interface MonitorTransportOptions {
  /** The guest's name, for errors. */
  guest: string;
  /** Where the socket is now (read from the live domain XML at every (re)connect). */
  resolvePath: () => Promise<string>;
  /** Negotiate out-of-band execution when QEMU offers it (default false). */
  oob?: boolean;
  /** Greeting + qmp_capabilities must complete within this (default 5000 ms). */
  handshakeTimeoutMs?: number;
  maxMessageBytes?: number;
  /** Told when the connection drops and when it is back (the facade reports the gap to event consumers). */
  onConnectionChange?: (change: MonitorConnectionChange) => void;
}

const NEGOTIATE_ID = 'libqemu-monitor-negotiate';

/**
 * A guest's second QMP monitor that outlives QEMU restarts. It negotiates capabilities itself
 * (preNegotiated), so the QmpClient above it stays open while QEMU goes away and comes back:
 * commands cut off by the drop fail at once with MonitorDisconnectedError, commands sent during the
 * gap fail the same way, and `reconnect()` (driven by libvirt's lifecycle events) dials the socket
 * again. Event subscribers keep their subscriptions across the gap.
 */
export class MonitorTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities;
  readonly description: string;
  private handlers: TransportHandlers | undefined;
  private inner: StreamTransport | undefined;
  private state: 'idle' | 'connected' | 'disconnected' | 'closed' = 'idle';
  private readonly outstanding = new Map<string, string>();
  private disconnectedAt = 0;
  private reconnecting: Promise<void> | undefined;
  private currentPath: string | undefined;
  private negotiations = 0;
  /** Whether the socket keeps Node alive once negotiated (see holdProcess). */
  private holding = true;

  constructor(private readonly options: MonitorTransportOptions) {
    if (!options || typeof options.resolvePath !== 'function') {
      throw new InvalidArgumentError('MonitorTransport: resolvePath must be a function returning the socket path');
    }
    this.capabilities = {
      pipelining: true,
      oob: options.oob === true,
      fdPassing: true,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      preNegotiated: true,
    };
    this.description = `monitor:${options.guest}`;
  }

  /** True while a QEMU is on the other end. */
  get connected(): boolean {
    return this.state === 'connected';
  }

  /** The socket path of the current (or last) connection. */
  get path(): string | undefined {
    return this.currentPath;
  }

  async open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'idle') throw new InvalidArgumentError(`${this.description}: transport already opened`, { hint: 'create a new transport per client' });
    this.handlers = handlers;
    const greeting = await this.dial(signal);
    this.state = 'connected';
    handlers.message(greeting);
  }

  /**
   * Whether the connection keeps the process alive (default true). Applies to this connection and to
   * every later one after QEMU restarts; a dial in progress holds it until negotiated either way, so
   * that a caller awaiting open() or reconnect() is not cut off.
   */
  holdProcess(hold: boolean): void {
    this.holding = hold;
    if (this.state === 'connected') this.inner?.holdProcess(hold);
  }

  send(msg: QmpMessage, options?: SendOptions): void {
    if (this.state === 'closed' || this.state === 'idle') throw new QmpClosedError(`${this.description} is closed`);
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const command = String(msg.execute ?? msg['exec-oob'] ?? '?');
    if (this.state === 'disconnected' || !this.inner) {
      if (id !== undefined) queueMicrotask(() => this.fail(id, command, undefined));
      return;
    }
    if (id !== undefined) this.outstanding.set(id, command);
    try {
      this.inner.send(msg, options);
    } catch (err) {
      // A refusal before sending (size cap, fds) is the caller's typed error; the connection is untouched.
      if (err instanceof MessageTooLargeError || err instanceof FdPassingError) {
        if (id !== undefined) this.outstanding.delete(id);
        throw err;
      }
      // otherwise the socket closed under us; onInnerClosed fails the outstanding ids
    }
  }

  /** Dials the socket again after QEMU restarted; resolves once negotiated. No-op while connected. */
  reconnect(signal?: AbortSignal): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state !== 'disconnected') return Promise.reject(new QmpClosedError(`${this.description} is ${this.state}`));
    this.reconnecting ??= (async () => {
      try {
        await this.dial(signal);
        if ((this.state as string) === 'closed') return;
        this.state = 'connected';
        const gapMs = Date.now() - this.disconnectedAt;
        this.options.onConnectionChange?.({ type: 'reconnected', at: new Date(), gapMs, path: this.currentPath ?? '' });
      } finally {
        this.reconnecting = undefined;
      }
    })();
    return this.reconnecting;
  }

  async close(reason?: Error): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state !== 'idle';
    this.state = 'closed';
    const inner = this.inner;
    this.inner = undefined;
    await inner?.close();
    if (wasOpen) this.handlers?.closed(reason);
  }

  /** Connects, reads the greeting and negotiates; resolves to the greeting message. */
  private async dial(signal?: AbortSignal): Promise<QmpMessage> {
    const guest = this.options.guest;
    const path = await this.options.resolvePath();
    this.currentPath = path;
    const inner = new StreamTransport({ path }, { maxMessageBytes: this.capabilities.maxMessageBytes, fdPassing: unixFdPassing });
    const negotiateId = `${NEGOTIATE_ID}-${++this.negotiations}`;
    const greeting = new GreetingWaiter();
    let greetingMessage: QmpMessage | undefined;
    let ready = false;
    /** The reply to our qmp_capabilities, or the handshake's end (QEMU closed, timeout, abort). */
    let negotiated: { resolve(m: QmpMessage): void; reject(e: unknown): void } | undefined;
    const failHandshake = (err: unknown) => (greeting.reject(err), negotiated?.reject(err));
    try {
      await inner.open(
        {
          message: (m) => {
            if (ready) {
              if (this.inner === inner) this.deliver(m);
            } else if ('QMP' in m && greetingMessage === undefined) {
              greetingMessage = m;
              greeting.offer(m);
            } else if (m.id === negotiateId) {
              negotiated?.resolve(m);
            } else if (typeof m.event === 'string') {
              // events before negotiation completes: QEMU sends none, but a proxy might; pass them on
              this.handlers?.message(m);
            }
          },
          takeReply: (line) => ready && this.inner === inner && this.takeReply(line),
          failed: (id, e) => this.handlers?.failed(id, e),
          protocolError: (e) => this.handlers?.protocolError(e),
          closed: (r) => {
            if (!ready) failHandshake(new MonitorUnavailableError({ guest, socketPath: path, message: `QEMU closed the monitor during the handshake${r ? `: ${r.message}` : ''}`, hint: 'the guest may be shutting down; retry once it runs', cause: r }));
            this.onInnerClosed(inner, r);
          },
        },
        signal,
      );
    } catch (err) {
      throw this.explainConnectError(path, err);
    }
    const timeoutMs = this.options.handshakeTimeoutMs ?? 5000;
    const busy = () =>
      new MonitorUnavailableError({
        guest,
        socketPath: path,
        message: `no QMP greeting within ${timeoutMs} ms: another client probably holds this monitor (a second monitor serves one client at a time)`,
        hint: "close the other client (in this process, share guest.qmp()), add another monitor, or use guest.qmp({ via: 'passthrough' })",
        reason: 'busy',
      });
    this.inner = inner;
    try {
      await withDeadline({ timeoutMs, signal, onTimeout: busy }, async (aborted) => {
        const g = await abortable(greeting.promise, aborted);
        await negotiate(g, {
          oob: this.capabilities.oob,
          run: async (args) => {
            const reply = new Promise<QmpMessage>((resolve, reject) => (negotiated = { resolve, reject }));
            const msg: QmpMessage = { execute: 'qmp_capabilities', id: negotiateId };
            if (args) msg.arguments = args;
            inner.send(msg);
            const m = await abortable(reply, aborted);
            if ('error' in m) throw new MonitorUnavailableError({ guest, socketPath: path, message: `qmp_capabilities failed: ${JSON.stringify(m.error)}`, hint: 'is this socket a QMP monitor (mode=control)?' });
          },
        });
      });
      ready = true;
      inner.holdProcess(this.holding);
      return greetingMessage!;
    } catch (err) {
      if (this.inner === inner) this.inner = undefined;
      await inner.close();
      throw err;
    }
  }

  private explainConnectError(path: string, err: unknown): Error {
    const code = ((err as { cause?: NodeJS.ErrnoException })?.cause ?? (err as NodeJS.ErrnoException))?.code;
    const g = this.options.guest;
    if (code === 'EACCES' || code === 'EPERM') return permissionDenied(g, path, err);
    if (code === 'ENOENT') {
      const hint = "the guest's QEMU is not running, or it was started from an XML without this monitor; start it, or use guest.qmp({ via: 'passthrough' })";
      return new MonitorUnavailableError({ guest: g, socketPath: path, message: 'the socket does not exist', hint, reason: 'missing', cause: err });
    }
    if (code === 'ECONNREFUSED') {
      const message = 'nothing listens on the socket (a stale file left by a QEMU that was killed)';
      return new MonitorUnavailableError({ guest: g, socketPath: path, message, hint: 'start the guest again (the stale file is removed), or use passthrough', reason: 'stale', cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  /** A reply line offered unparsed to the client above (a relay's command takes it as text). */
  private takeReply(line: string): boolean {
    const take = this.handlers?.takeReply;
    const id = take && replyLineParts(line)?.id;
    if (id === undefined || !this.outstanding.has(id) || !take!(line)) return false;
    this.outstanding.delete(id);
    return true;
  }

  private deliver(m: QmpMessage): void {
    if (typeof m.id === 'string') this.outstanding.delete(m.id);
    this.handlers?.message(m);
  }

  /** A command will get no reply from this QEMU: its caller gets MonitorDisconnectedError. */
  private fail(id: string, command: string, cause: Error | undefined): void {
    if (this.state === 'closed') return;
    this.handlers?.failed(id, new MonitorDisconnectedError({ guest: this.options.guest, command, cause }));
  }

  private onInnerClosed(inner: StreamTransport, reason: Error | undefined): void {
    if (this.inner !== inner) return;
    this.inner = undefined;
    if (this.state !== 'connected') return;
    this.state = 'disconnected';
    this.disconnectedAt = Date.now();
    const cut = [...this.outstanding];
    this.outstanding.clear();
    for (const [id, command] of cut) this.fail(id, command, reason);
    this.options.onConnectionChange?.({ type: 'disconnected', at: new Date(), reason: reason?.message ?? 'QEMU closed the monitor' });
  }
}
