import { createConnection, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError } from '../common/errors.js';
import { QmpClosedError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeMessage, MessageFramer } from './framing.js';
import type { QmpMessage, QmpTransport, TransportCapabilities, TransportHandlers } from './transport.js';

/** Where a stream transport connects: a unix socket, TCP, an inherited fd, or any Duplex you already have. */
export type StreamTarget = { path: string } | { host: string; port: number } | { fd: number } | { stream: Duplex };

export interface StreamTransportOptions {
  /** Per-message cap for incoming messages (default 10 MiB, like libvirt and qemu.qmp). */
  maxMessageBytes?: number;
}

/**
 * QMP over a byte stream: newline-delimited JSON in both directions. One framing implementation for
 * every kind of stream; only how the stream is obtained differs.
 */
export class StreamTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities;
  readonly description: string;
  private stream: Duplex | undefined;
  private handlers: TransportHandlers | undefined;
  private done = false;
  private corked = false;
  /** A message was already written in this tick (the next ones are corked until the tick ends). */
  private sentThisTick = false;
  private closeReason: Error | undefined;

  constructor(
    private readonly target: StreamTarget,
    options: StreamTransportOptions = {},
  ) {
    validateTarget(target);
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.capabilities = {
      pipelining: true,
      oob: true,
      // Node's net module cannot send SCM_RIGHTS.
      fdPassing: false,
      maxMessageBytes,
      preNegotiated: false,
    };
    this.description = describeTarget(target);
  }

  async open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void> {
    if (this.handlers) throw new InvalidArgumentError(`${this.description}: transport already opened`, { hint: 'create a new transport per connection' });
    signal?.throwIfAborted();
    this.handlers = handlers;
    const stream = this.createStream();
    this.stream = stream;
    const framer = new MessageFramer(
      { message: (m) => this.handlers?.message(m), protocolError: (e) => this.handlers?.protocolError(e) },
      this.capabilities.maxMessageBytes,
    );
    stream.on('data', (chunk: Buffer | string) => {
      if (!this.done) framer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    });
    stream.on('error', (err: Error) => this.finish(err));
    stream.on('close', () => this.finish(undefined));
    stream.on('end', () => {
      // The peer closed its side: we are done too (QMP has no half-closed use).
      this.finish(undefined);
      stream.destroy();
    });
    if ('path' in this.target || 'host' in this.target) {
      await waitForConnect(stream as Socket, this.description, signal);
    }
    if (this.done) throw new QmpClosedError(`${this.description} closed while opening`, { cause: this.closeReason });
  }

  send(msg: QmpMessage): void {
    const stream = this.stream;
    if (this.done || !stream) throw new QmpClosedError(`${this.description} is closed`);
    const line = encodeMessage(msg);
    // The first message of a tick leaves at once (a lone command must not wait a tick); the ones that
    // follow in the same tick (a burst of calls, or the queued commands a chunk of replies released)
    // are corked and leave together in one write when the tick ends.
    if (this.sentThisTick) {
      if (!this.corked) {
        this.corked = true;
        stream.cork();
      }
    } else {
      this.sentThisTick = true;
      process.nextTick(this.endTick);
    }
    stream.write(line);
  }

  private readonly endTick = (): void => {
    this.sentThisTick = false;
    if (this.corked) {
      this.corked = false;
      this.stream?.uncork();
    }
  };

  async close(reason?: Error): Promise<void> {
    const stream = this.stream;
    if (this.done || !stream) {
      this.finish(reason);
      return;
    }
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    this.finish(reason);
    stream.destroy();
    // A Duplex that never emits 'close' must not hang close().
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  private createStream(): Duplex {
    const t = this.target;
    if ('stream' in t) return t.stream;
    if ('fd' in t) return new Socket({ fd: t.fd, readable: true, writable: true });
    if ('path' in t) return createConnection({ path: t.path });
    return createConnection({ host: t.host, port: t.port });
  }

  private finish(reason: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.closeReason = reason;
    const h = this.handlers;
    if (this.stream && !this.stream.destroyed) this.stream.destroy();
    h?.closed(reason);
  }
}

function waitForConnect(socket: Socket, description: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(
        new QmpClosedError(`cannot connect to ${description}: ${err.code ?? err.message}`, {
          cause: err,
          hint:
            err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
              ? 'is QEMU running with -qmp on that socket? (and not already held by another client)'
              : err.code === 'EACCES'
                ? 'the socket is not accessible to this user; check its permissions'
                : 'check the address and that QEMU is listening',
        }),
      );
    };
    const onClose = () => {
      cleanup();
      reject(new QmpClosedError(`${description} closed while connecting`));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(signal?.reason ?? new Error('aborted'));
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    socket.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function validateTarget(t: StreamTarget): void {
  const bad = (what: string) =>
    new InvalidArgumentError(`invalid QMP target: ${what}`, {
      hint: 'pass { path } (unix socket), { host, port } (TCP), { fd } (inherited descriptor) or { stream } (a Node Duplex)',
    });
  if (t === null || typeof t !== 'object') throw bad(`expected an object, got ${String(t)}`);
  if ('path' in t) {
    if (typeof t.path !== 'string' || t.path === '') throw bad('path must be a non-empty string');
  } else if ('host' in t) {
    if (typeof t.host !== 'string' || t.host === '') throw bad('host must be a non-empty string');
    if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw bad(`port must be 1–65535, got ${String(t.port)}`);
  } else if ('fd' in t) {
    if (!Number.isInteger(t.fd) || t.fd < 0) throw bad(`fd must be a non-negative integer, got ${String(t.fd)}`);
  } else if ('stream' in t) {
    const s = t.stream as Partial<Duplex> | null;
    if (!s || typeof s.write !== 'function' || typeof s.on !== 'function') throw bad('stream must be a Duplex');
  } else {
    throw bad('none of path, host/port, fd, stream given');
  }
}

function describeTarget(t: StreamTarget): string {
  if ('path' in t) return `unix:${t.path}`;
  if ('host' in t) return `tcp:${t.host}:${t.port}`;
  if ('fd' in t) return `fd:${t.fd}`;
  return 'stream';
}
