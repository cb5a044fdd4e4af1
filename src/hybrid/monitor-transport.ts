import { InvalidArgumentError } from '../common/errors.js';
import { QmpClosedError } from '../qmp/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../qmp/framing.js';
import { StreamTransport } from '../qmp/stream-transport.js';
import type { QmpMessage, QmpTransport, TransportCapabilities, TransportHandlers } from '../qmp/transport.js';
import { MonitorUnavailableError } from './errors.js';
import { permissionDenied } from './stale-socket.js';

/** QMP error class of synthetic replies for commands cut off by a dropped monitor connection. */
export const DISCONNECTED_ERROR_CLASS = 'LibqemuDisconnected';

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
 * commands cut off by the drop fail at once with a `LibqemuDisconnected` error reply, commands sent
 * during the gap fail the same way, and `reconnect()` (driven by libvirt's lifecycle events) dials
 * the socket again. Event subscribers keep their subscriptions across the gap.
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

  constructor(private readonly options: MonitorTransportOptions) {
    if (!options || typeof options.resolvePath !== 'function') {
      throw new InvalidArgumentError('MonitorTransport: resolvePath must be a function returning the socket path');
    }
    this.capabilities = {
      pipelining: true,
      oob: options.oob === true,
      fdPassing: false,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      ownsIds: false,
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

  send(msg: QmpMessage): void {
    if (this.state === 'closed' || this.state === 'idle') throw new QmpClosedError(`${this.description} is closed`);
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const command = String(msg.execute ?? msg['exec-oob'] ?? '?');
    if (this.state === 'disconnected' || !this.inner) {
      if (id !== undefined) queueMicrotask(() => this.failReply(id, command, 'the guest\'s QEMU is not running (monitor disconnected)'));
      return;
    }
    if (id !== undefined) this.outstanding.set(id, command);
    try {
      this.inner.send(msg);
    } catch {
      // the socket closed under us; onInnerClosed fails the outstanding ids
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
    const path = await this.options.resolvePath();
    this.currentPath = path;
    const inner = new StreamTransport({ path }, { maxMessageBytes: this.capabilities.maxMessageBytes });
    const negotiateId = `${NEGOTIATE_ID}-${++this.negotiations}`;
    let stage: 'greeting' | 'negotiating' | 'ready' = 'greeting';
    let greeting: QmpMessage | undefined;
    let settle: { resolve(m: QmpMessage): void; reject(e: unknown): void } | undefined;
    const handshake = new Promise<QmpMessage>((resolve, reject) => (settle = { resolve, reject }));
    handshake.catch(() => {});
    try {
      await inner.open(
        {
          message: (m) => {
            if (stage === 'ready') {
              if (this.inner === inner) this.deliver(m);
              return;
            }
            if (stage === 'greeting' && 'QMP' in m) {
              greeting = m;
              stage = 'negotiating';
              const offered = Array.isArray((m.QMP as { capabilities?: unknown })?.capabilities) && ((m.QMP as { capabilities: unknown[] }).capabilities.includes('oob'));
              const msg: QmpMessage = { execute: 'qmp_capabilities', id: negotiateId };
              if (this.capabilities.oob && offered) msg.arguments = { enable: ['oob'] };
              inner.send(msg);
              return;
            }
            if (m.id === negotiateId) {
              if ('error' in m) settle?.reject(new MonitorUnavailableError(this.options.guest, path, `qmp_capabilities failed: ${JSON.stringify(m.error)}`, 'is this socket a QMP monitor (mode=control)?'));
              else {
                stage = 'ready';
                settle?.resolve(greeting!);
              }
              return;
            }
            // events before negotiation completes: QEMU sends none, but a proxy might; pass them on
            if (typeof m.event === 'string' && this.handlers) this.handlers.message(m);
          },
          protocolError: (e) => this.handlers?.protocolError(e),
          closed: (r) => {
            if (stage !== 'ready') settle?.reject(new MonitorUnavailableError(this.options.guest, path, `QEMU closed the monitor during the handshake${r ? `: ${r.message}` : ''}`, 'the guest may be shutting down; retry once it runs', r));
            this.onInnerClosed(inner, r);
          },
        },
        signal,
      );
    } catch (err) {
      throw this.explainConnectError(path, err);
    }
    const timeoutMs = this.options.handshakeTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => settle?.reject(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (timeoutMs > 0) {
        timer = setTimeout(
          () =>
            settle?.reject(
              new MonitorUnavailableError(
                this.options.guest,
                path,
                `no QMP greeting within ${timeoutMs} ms: another client probably holds this monitor (a second monitor serves one client at a time)`,
                "close the other client (in this process, share guest.qmp()), add another monitor, or use guest.qmp({ via: 'passthrough' })",
                undefined,
                'busy',
              ),
            ),
          timeoutMs,
        );
      }
      this.inner = inner;
      return await handshake;
    } catch (err) {
      if (this.inner === inner) this.inner = undefined;
      await inner.close();
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private explainConnectError(path: string, err: unknown): Error {
    const code = ((err as { cause?: NodeJS.ErrnoException })?.cause ?? (err as NodeJS.ErrnoException))?.code;
    const g = this.options.guest;
    if (code === 'EACCES' || code === 'EPERM') return permissionDenied(g, path, err);
    if (code === 'ENOENT') {
      return new MonitorUnavailableError(g, path, 'the socket does not exist', "the guest's QEMU is not running, or it was started from an XML without this monitor; start it, or use guest.qmp({ via: 'passthrough' })", err, 'missing');
    }
    if (code === 'ECONNREFUSED') {
      return new MonitorUnavailableError(g, path, 'nothing listens on the socket (a stale file left by a QEMU that was killed)', 'start the guest again (the stale file is removed), or use passthrough', err, 'stale');
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private deliver(m: QmpMessage): void {
    if (typeof m.id === 'string') this.outstanding.delete(m.id);
    this.handlers?.message(m);
  }

  private failReply(id: string, command: string, why: string): void {
    if (this.state === 'closed') return;
    this.handlers?.message({ id, error: { class: DISCONNECTED_ERROR_CLASS, desc: `${command}: ${why}` } });
  }

  private onInnerClosed(inner: StreamTransport, reason: Error | undefined): void {
    if (this.inner !== inner) return;
    this.inner = undefined;
    if (this.state !== 'connected') return;
    this.state = 'disconnected';
    this.disconnectedAt = Date.now();
    const cut = [...this.outstanding];
    this.outstanding.clear();
    for (const [id, command] of cut) this.failReply(id, command, 'the monitor connection dropped before the reply (QEMU stopped or was killed)');
    this.options.onConnectionChange?.({ type: 'disconnected', at: new Date(), reason: reason?.message ?? 'QEMU closed the monitor' });
  }
}
