/**
 * A scripted QMP server for tests: a real unix socket in a private temp dir, the same server-side QMP
 * session as the proxy (QEMU's parsing, negotiation and error replies), and hooks to misbehave on demand (events at hostile moments, replies out of order or never, split writes,
 * oversized or garbage lines). Use it to test your own QMP code the way go-libvirt's libvirttest does.
 *
 *   const server = await FakeQmpServer.start({
 *     commands: { 'query-status': () => ({ return: { status: 'running', running: true } }) },
 *   });
 *   const client = await QmpClient.connect(server.target);
 *   …
 *   await server.close();
 */
import { chmodSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdReader } from '../proxy/fd-reader.js';
import { QmpServerSession, type QmpServerReply, type QmpServerRequest } from '../qmp/server-session.js';
import type { QmpMessage } from '../qmp/transport.js';

/** What a command handler returns: a reply body (`{ return }` or `{ error }`), or undefined to not reply (yet). */
export type FakeReply = { return: unknown } | { error: { class: string; desc: string } } | undefined;

export type FakeCommandHandler = (
  args: Record<string, unknown> | undefined,
  call: FakeCall,
) => FakeReply | Promise<FakeReply>;

/** One received command; reply to it later with `reply()` when the handler returned undefined. */
export interface FakeCall {
  readonly command: string;
  readonly id: unknown;
  readonly oob: boolean;
  /** File descriptors that came with the command (servers started with `fdPassing`); closed after the reply. */
  readonly fds: readonly number[];
  readonly message: QmpMessage;
  readonly connection: FakeQmpConnection;
  reply(body: NonNullable<FakeReply>): void;
}

export interface FakeQmpServerOptions {
  /** Greeting's version (default 7.2.0). */
  version?: { major: number; minor: number; micro: number };
  /** Capabilities offered in the greeting (default none; pass ['oob'] to offer OOB). */
  capabilities?: string[];
  /** false: never greet (a server that hangs). Default true. */
  greet?: boolean;
  /** Receive fds that clients send with commands (SCM_RIGHTS), as `call.fds`. Default false. */
  fdPassing?: boolean;
  /** Called on every new connection before the greeting is sent (e.g. to send an early event). */
  onConnection?: (conn: FakeQmpConnection) => void | Promise<void>;
  /**
   * Per-command handlers; these override the built-ins (query-status, query-version). A
   * `qmp_capabilities` handler runs once the session has accepted the negotiation's arguments.
   */
  commands?: Record<string, FakeCommandHandler>;
}

/** The server side of one client connection. */
export class FakeQmpConnection {
  /** Commands received, in order (negotiation included). */
  readonly received: QmpMessage[] = [];
  /** Commands received and not yet answered. */
  outstanding = 0;
  /** The most commands that were outstanding at once: what the client pipelined. */
  maxOutstanding = 0;
  private closedFlag = false;
  /** @internal */
  session!: QmpServerSession;

  constructor(
    readonly socket: Socket,
    private readonly server: FakeQmpServer,
  ) {
    socket.on('close', () => (this.closedFlag = true));
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** qmp_capabilities succeeded on this connection. */
  get negotiated(): boolean {
    return this.session.isNegotiated;
  }

  /** The client enabled `oob`. */
  get oobEnabled(): boolean {
    return this.session.oobEnabled;
  }

  /** Sends one message as a CRLF-terminated line, like QEMU. */
  send(msg: QmpMessage): void {
    this.sendRaw(`${JSON.stringify(msg)}\r\n`);
  }

  /** Writes raw bytes (garbage, split messages, oversized lines…). */
  sendRaw(data: string | Buffer): void {
    if (!this.closedFlag) this.socket.write(data);
  }

  /** Writes `data` one piece at a time with a pause between pieces (default: every byte, 1 ms apart). */
  async sendSplit(data: string | Buffer, pieceBytes = 1, pauseMs = 1): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let i = 0; i < buf.length; i += pieceBytes) {
      this.sendRaw(buf.subarray(i, i + pieceBytes));
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  /** Sends an event with a current timestamp. */
  sendEvent(event: string, data?: Record<string, unknown>): void {
    const now = Date.now();
    const msg: QmpMessage = { event, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } };
    if (data !== undefined) msg.data = data;
    this.send(msg);
  }

  sendGreeting(): void {
    this.send({ QMP: { version: { qemu: this.server.version, package: 'fake' }, capabilities: this.server.capabilities } });
  }

  /** Closes the connection abruptly. */
  destroy(): void {
    this.socket.destroy();
  }

  /** @internal Runs a command's handler; resolves with the reply the session sends (undefined: none). */
  handle(request: QmpServerRequest): Promise<QmpServerReply | undefined> {
    const { command, id } = request;
    this.outstanding++;
    this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
    return new Promise((resolve, reject) => {
      let replied = false;
      const call: FakeCall = {
        command,
        id,
        oob: request.oob,
        fds: request.fds,
        message: request.message,
        connection: this,
        reply: (body) => {
          if (replied) throw new Error(`FakeQmpServer: ${command} answered twice`);
          replied = true;
          this.outstanding--;
          resolve(body);
        },
      };
      const handler = this.server.handlerFor(command);
      if (!handler) return call.reply({ error: { class: 'CommandNotFound', desc: `The command ${command} has not been found` } });
      Promise.resolve()
        .then(() => handler(request.args, call))
        .then((body) => {
          if (body !== undefined && !replied) call.reply(body);
        }, reject);
    });
  }
}

export class FakeQmpServer {
  readonly version: { major: number; minor: number; micro: number };
  readonly capabilities: string[];
  readonly connections: FakeQmpConnection[] = [];
  private readonly handlers = new Map<string, FakeCommandHandler>();
  private readonly fdReader: FdReader | undefined;
  private readonly connectionWaiters: ((c: FakeQmpConnection) => void)[] = [];
  private readonly commandWaiters: { command: string; resolve: (c: QmpMessage) => void }[] = [];

  private constructor(
    private readonly server: Server,
    readonly dir: string,
    readonly path: string,
    private readonly options: FakeQmpServerOptions,
  ) {
    this.version = options.version ?? { major: 7, minor: 2, micro: 0 };
    this.capabilities = options.capabilities ?? [];
    this.fdReader = options.fdPassing ? new FdReader() : undefined;
    this.handlers.set('query-status', () => ({ return: { status: 'running', singlestep: false, running: true } }));
    this.handlers.set('query-version', () => ({ return: { qemu: this.version, package: 'fake' } }));
    for (const [name, h] of Object.entries(options.commands ?? {})) this.handlers.set(name, h);
  }

  /** Listens on a fresh unix socket (0600, in a 0700 temp dir). */
  static async start(options: FakeQmpServerOptions = {}): Promise<FakeQmpServer> {
    const dir = mkdtempSync(join(tmpdir(), 'libqemu-fake-qmp-'));
    chmodSync(dir, 0o700);
    const path = join(dir, 'qmp.sock');
    // With fd passing the sockets are read with recvmsg, never by Node (its reads drop the fds).
    const server = createServer({ pauseOnConnect: options.fdPassing === true });
    const fake = new FakeQmpServer(server, dir, path, options);
    server.on('connection', (socket) => void fake.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    return fake;
  }

  /** Pass to QmpClient.connect. */
  get target(): { path: string } {
    return { path: this.path };
  }

  /** Replaces (or adds) a command handler. */
  on(command: string, handler: FakeCommandHandler): void {
    this.handlers.set(command, handler);
  }

  /** Resolves with the next connection accepted after this call (call it before connecting). */
  nextConnection(): Promise<FakeQmpConnection> {
    return new Promise((resolve) => this.connectionWaiters.push(resolve));
  }

  /** Resolves when a command with this name next arrives. */
  nextCommand(command: string): Promise<QmpMessage> {
    return new Promise((resolve) => this.commandWaiters.push({ command, resolve }));
  }

  /** Stops listening, drops every connection and removes the temp dir. */
  async close(): Promise<void> {
    this.fdReader?.stop();
    for (const c of this.connections) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** @internal */
  handlerFor(command: string): FakeCommandHandler | undefined {
    return this.handlers.get(command);
  }

  /** @internal */
  notifyCommand(msg: QmpMessage, _conn: FakeQmpConnection): void {
    const name = msg.execute ?? msg['exec-oob'];
    for (let i = 0; i < this.commandWaiters.length; i++) {
      const w = this.commandWaiters[i]!;
      if (w.command === name) {
        this.commandWaiters.splice(i--, 1);
        w.resolve(msg);
      }
    }
  }

  private async accept(socket: Socket): Promise<void> {
    const conn = new FakeQmpConnection(socket, this);
    this.connections.push(conn);
    socket.on('error', () => {});
    conn.session = new QmpServerSession(
      socket,
      // The owner greets (after onConnection); replies leave as handlers give them, so scripts can reorder them.
      { greeting: undefined, oobOffered: this.capabilities.includes('oob'), ordered: false, maxPending: Number.MAX_SAFE_INTEGER, readsSocket: !this.fdReader },
      {
        observe: (request) => {
          conn.received.push(request.message);
          this.notifyCommand(request.message, conn);
        },
        capabilities: (request) => (this.handlers.has('qmp_capabilities') ? conn.handle(request) : { return: {} }),
        execute: async (request) => {
          try {
            return await conn.handle(request);
          } finally {
            for (const fd of request.fds) closeQuietly(fd);
          }
        },
        closed: () => {
          if (socketFd !== undefined) this.fdReader?.remove(socketFd);
        },
      },
    );
    const socketFd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (this.fdReader && typeof socketFd === 'number') {
      const session = conn.session;
      this.fdReader.add(socketFd, {
        data: (chunk, fds) => session.receive(chunk, fds),
        end: () => session.endInput(),
        error: (err) => session.close(`socket error: ${err.message}`),
        get wantsInput() {
          return session.wantsInput;
        },
      });
    }
    await this.options.onConnection?.(conn);
    if (this.options.greet !== false) conn.sendGreeting();
    for (const w of this.connectionWaiters.splice(0)) w(conn);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed by the script
  }
}
