import { createConnection, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError } from '../common/errors.js';
import { FdPassingError, MessageTooLargeError, QmpClosedError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeMessage, MessageFramer } from './framing.js';
import type { FdPassing, QmpMessage, QmpTransport, SendOptions, TransportCapabilities, TransportHandlers } from './transport.js';

/** Where a stream transport connects: a unix socket, TCP, an inherited fd, or any Duplex you already have. */
export type StreamTarget = { path: string } | { host: string; port: number } | { fd: number } | { stream: Duplex };

export interface StreamTransportOptions {
  /** Per-message cap for incoming messages (default 10 MiB, like libvirt and qemu.qmp). */
  maxMessageBytes?: number;
  /**
   * Per-message cap for outgoing commands (default 10 MiB, libvirt's monitor limit): a larger one is
   * refused with MessageTooLargeError before anything is written, so it never holds the socket.
   */
  maxOutboundBytes?: number;
  /**
   * The system calls to pass file descriptors with commands on a unix socket (`unixFdPassing` from
   * libqemu's native code); without it, or on TCP, `capabilities.fdPassing` is false.
   */
  fdPassing?: FdPassing;
}

/** A write waiting behind a message that carries fds: those must leave alone, on an empty socket queue. */
interface QueuedWrite {
  data: Buffer;
  fds: readonly number[] | undefined;
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
  /** The largest command this transport sends. */
  readonly maxOutboundBytes: number;
  private readonly fdPassing: FdPassing | undefined;
  /** Writes held while a message with fds waits for the socket's queue to empty. */
  private held: QueuedWrite[] | undefined;
  /** Whether the socket keeps Node alive (see holdProcess). */
  private holding = true;

  constructor(
    private readonly target: StreamTarget,
    options: StreamTransportOptions = {},
  ) {
    validateTarget(target);
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxOutboundBytes = options.maxOutboundBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(this.maxOutboundBytes) || this.maxOutboundBytes < 2) {
      throw new InvalidArgumentError(`maxOutboundBytes must be an integer ≥ 2, got ${String(this.maxOutboundBytes)}`);
    }
    this.capabilities = {
      pipelining: true,
      oob: true,
      // SCM_RIGHTS needs a unix socket and the native sendmsg plugged in.
      fdPassing: options.fdPassing !== undefined && 'path' in target,
      maxMessageBytes,
      preNegotiated: false,
    };
    this.description = describeTarget(target);
    this.fdPassing = options.fdPassing;
  }

  async open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void> {
    if (this.handlers) throw new InvalidArgumentError(`${this.description}: transport already opened`, { hint: 'create a new transport per connection' });
    signal?.throwIfAborted();
    this.handlers = handlers;
    const stream = this.createStream();
    this.stream = stream;
    if (!this.holding) (stream as Partial<Socket>).unref?.();
    const framer = new MessageFramer(
      {
        message: (m) => this.handlers?.message(m),
        protocolError: (e) => this.handlers?.protocolError(e),
        takeLine: (line) => this.handlers?.takeReply?.(line) === true,
      },
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

  /**
   * Whether the open socket keeps the process alive (true by default, like any socket). A user above that
   * only listens, and holds the process itself while someone awaits, turns it off so that an idle
   * listener does not keep a finished program running. No effect on a Duplex that is not a socket.
   */
  holdProcess(hold: boolean): void {
    this.holding = hold;
    const stream = this.stream as Partial<Socket> | undefined;
    if (hold) stream?.ref?.();
    else stream?.unref?.();
  }

  send(msg: QmpMessage, options?: SendOptions): void {
    const stream = this.stream;
    if (this.done || !stream) throw new QmpClosedError(`${this.description} is closed`);
    const line = encodeMessage(msg);
    // UTF-8 takes at most 3 bytes per UTF-16 unit: measure exactly only when it could matter.
    if (line.length * 3 > this.maxOutboundBytes) {
      const bytes = Buffer.byteLength(line);
      if (bytes > this.maxOutboundBytes) {
        throw new MessageTooLargeError(this.maxOutboundBytes, bytes, undefined, {
          direction: 'outbound',
          command: String(msg.execute ?? msg['exec-oob'] ?? 'a message'),
        });
      }
    }
    const fds = options?.fds;
    if ((fds && fds.length > 0) || this.held) {
      if (fds && fds.length > 0 && !this.capabilities.fdPassing) {
        throw new FdPassingError(`${this.description} cannot pass file descriptors`, { hint: 'connect to a unix socket with { fdPassing: unixFdPassing }' });
      }
      this.hold({ data: Buffer.from(line), fds: fds && fds.length > 0 ? [...fds] : undefined });
      return;
    }
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

  /**
   * QEMU takes the fds that arrive in the same read as a command's bytes, so a message with fds goes
   * out in one sendmsg on an empty socket queue, and what is sent after it waits its turn.
   */
  private hold(write: QueuedWrite): void {
    (this.held ??= []).push(write);
    if (this.held.length === 1) this.flushHeld();
  }

  private readonly flushHeld = (): void => {
    const stream = this.stream as Socket | undefined;
    while (this.held && this.held.length > 0 && stream && !this.done) {
      const next = this.held[0]!;
      if (!next.fds) {
        this.held.shift();
        stream.write(next.data);
        continue;
      }
      if (this.corked) this.endTick();
      if (stream.writableLength > 0) {
        stream.once('drain', this.flushHeld);
        return;
      }
      const fd = socketFd(stream);
      if (fd === undefined) return this.failHeld(new FdPassingError(`${this.description}: the socket has no file descriptor to send on`));
      const r = this.fdPassing!.sendWithFds(fd, next.data, next.fds);
      if ('errno' in r) {
        // EAGAIN (11) / EINTR (4): the kernel buffer is full for now; try again shortly.
        if (r.errno === 11 || r.errno === 4) {
          setTimeout(this.flushHeld, 1);
          return;
        }
        return this.failHeld(new FdPassingError(`${this.description}: sendmsg with file descriptors failed (errno ${r.errno})`));
      }
      this.held.shift();
      if (r.sent < next.data.length) stream.write(next.data.subarray(r.sent));
    }
    if (this.held?.length === 0) this.held = undefined;
  };

  /** A message with fds could not go out: the stream can no longer be trusted to be in sync. */
  private failHeld(err: Error): void {
    this.held = undefined;
    this.finish(err);
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

/** The OS descriptor under a connected net.Socket (Node keeps it on its internal handle). */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
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
