/**
 * One client of the proxy, seen from the proxy: a server-side QMP session (greeting, negotiation and
 * QEMU's own answers to malformed input, shared with the fake server) whose commands the proxy relays.
 */
import { closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { FdReader } from './fd-reader.js';
import type { ExecuteOptions } from '../qmp/command-map.js';
import type { CommandSettler } from '../qmp/command-table.js';
import { QmpServerSession, type QmpServerCall, type QmpServerRequest } from '../qmp/server-session.js';
import type { QmpMessage } from '../qmp/transport.js';
import type { QmpErrorBody } from './errors.js';

export type ClientRequest = QmpServerRequest;

export interface ClientConnectionHooks {
  /**
   * Relay a negotiated client's command to the backend (with `conn.relayOptions`); `settler` hears the
   * reply's `return` or the error.
   */
  relay(conn: ClientConnection, request: ClientRequest, settler: CommandSettler): void;
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
  /** Bytes of JSON tokens in one message (QEMU's limit: 64 MiB). */
  maxMessageBytes: number;
  /** Per-command timeout on the backend (default: the backend client's own). */
  commandTimeoutMs?: number;
  /** Read the socket with recvmsg so fds sent with commands are received (the socket was accepted paused). */
  fdReader?: FdReader;
}

export class ClientConnection {
  private readonly session: QmpServerSession;
  /**
   * The backend options of this client's commands, one object for all (read, never kept or changed,
   * by the client stack): its commands keep their order, different clients' may run side by side
   * where the backend can (libvirt passthrough: a libvirt call each); `signal` aborts when the client
   * is gone, so commands still queued behind the backend's in-flight cap are never sent.
   */
  readonly relayOptions: ExecuteOptions;

  constructor(
    readonly id: number,
    socket: Socket,
    options: ClientConnectionOptions,
    private readonly hooks: ClientConnectionHooks,
  ) {
    this.session = new QmpServerSession(
      socket,
      {
        greeting: options.greeting,
        oobOffered: options.oobOffered,
        maxPending: options.maxPending,
        maxOutputBytes: options.maxOutputBytes,
        limits: { maxTokenBytes: options.maxMessageBytes },
        readsSocket: options.fdReader === undefined,
      },
      {
        dispatch: (request, call) => hooks.relay(this, request, new RelayedCommand(this, call, request.fds)),
        closed: (reason) => {
          if (socketFd !== undefined) options.fdReader?.remove(socketFd);
          hooks.closed(this, reason);
        },
        log: (level, message, details) => hooks.log(level, `proxy client ${this.id}: ${message}`, { client: this.id, ...details }),
      },
    );
    this.relayOptions = { signal: this.session.goneSignal, orderingKey: this };
    if (options.commandTimeoutMs !== undefined) this.relayOptions.timeoutMs = options.commandTimeoutMs;
    const socketFd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (options.fdReader) {
      if (typeof socketFd !== 'number' || socketFd < 0) {
        this.session.close('no socket descriptor to read file descriptors from');
        return;
      }
      const session = this.session;
      options.fdReader.add(socketFd, {
        data: (chunk, fds) => session.receive(chunk, fds),
        end: () => session.endInput(),
        error: (err) => session.close(`socket error: ${err.message}`),
        get wantsInput() {
          return session.wantsInput;
        },
      });
    }
  }

  get isNegotiated(): boolean {
    return this.session.isNegotiated;
  }

  get isClosed(): boolean {
    return this.session.isClosed;
  }

  /** Commands relayed and not answered yet. */
  get pendingCount(): number {
    return this.session.pendingCount;
  }

  /** Sends an event to a negotiated client. */
  sendEvent(msg: QmpMessage): void {
    this.session.sendEvent(msg);
  }

  close(reason: string, graceful = false): void {
    this.session.close(reason, graceful);
  }

  /** @internal the backend's error as the client's QMP error reply */
  errorReply(err: unknown): { error: QmpErrorBody } {
    return { error: this.hooks.toQmpError(err) };
  }

  /** @internal a command's outcome arrived; logged when nobody is left to read it */
  settled(): void {
    if (this.session.isClosed) this.hooks.log('debug', `dropped a reply for proxy client ${this.id}: it is gone`, { client: this.id });
  }
}

/**
 * One relayed command on its way back: the backend's outcome becomes the client's reply. An object,
 * not a promise and closures: one allocation per command on the proxy's hot path.
 */
class RelayedCommand implements CommandSettler {
  constructor(
    private readonly conn: ClientConnection,
    private readonly call: QmpServerCall,
    /** Received with the command; the backend passed its own duplicates on (SCM_RIGHTS copies them). */
    private readonly fds: readonly number[],
  ) {}

  resolve(value: unknown): void {
    this.release();
    this.call.reply({ return: value ?? {} });
  }

  /** QEMU's own text, unparsed (the backend reads a QMP socket): its 64-bit integers and member order stay exact. */
  resolveText(returnText: string): void {
    this.release();
    this.call.replyReturnText(returnText);
  }

  reject(err: unknown): void {
    this.release();
    this.call.reply(this.conn.errorReply(err));
  }

  private release(): void {
    this.conn.settled();
    for (const fd of this.fds) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
