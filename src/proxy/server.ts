/**
 * A multi-client QMP proxy: standard QMP on a private unix socket, for any number of clients at once,
 * in front of one QMP client of ours (a bare QEMU socket, a guest's second monitor, or libvirt's
 * passthrough through the facade). Unlike QEMU's own socket (one client at a time) and libvirt's
 * virt-qemu-qmp-proxy (one client, one command in flight), every client gets its greeting at once,
 * may pipeline, keeps its own ids, and receives every event.
 */
import { promises as fs } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { InvalidArgumentError } from '../common/errors.js';
import type { QmpGreeting, Runstate } from '../qmp/client.js';
import type { ExecuteOptions, QmpEvent } from '../qmp/command-map.js';
import type { CommandSettler } from '../qmp/command-table.js';
import { QEMU_JSON_LIMITS } from '../qmp/json-streamer.js';
import type { QmpMessage, QmpTransport } from '../qmp/transport.js';
import { ClientConnection, type ClientRequest } from './client-connection.js';
import { FdReader } from './fd-reader.js';
import type { PolicyError } from '../hybrid/errors.js';
import { ProxyError, toQmpError, type RefusalText } from './errors.js';
import { prepareListenPath } from './listen-path.js';

/**
 * What the proxy needs from its backend: any opened QmpClient (QmpClient, QemuClient, or a guest's
 * GuestQmpClient, whose ownership policy then applies to every proxied command).
 */
export interface ProxyBackend {
  readonly greeting: QmpGreeting;
  readonly runstate: Runstate;
  readonly oobEnabled: boolean;
  execute(command: string, args?: Record<string, unknown>, options?: ExecuteOptions): Promise<unknown>;
  /** execute() with the outcome handed to `settler` (QmpClient has it): the proxy's path without a promise per command. */
  executeTo?(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions, settler: CommandSettler): void;
  on(type: 'event', listener: (event: QmpEvent<string, unknown>) => void): () => void;
  on(type: 'runstate', listener: (state: Runstate, previous: Runstate) => void): () => void;
}

export interface ProxyLogger {
  debug?(message: string, details?: Record<string, unknown>): void;
  info?(message: string, details?: Record<string, unknown>): void;
  warn?(message: string, details?: Record<string, unknown>): void;
}

export interface QmpProxyOptions {
  /** The unix socket to serve on; created 0600, its directory 0700 (created if missing, refused if shared). */
  listen: string;
  /** Clients at once (default 64); more are turned away with a log line. */
  maxClients?: number;
  /** Unread output allowed per client before it is dropped (default 16 MiB: above QMP's 10 MiB message cap). */
  maxClientOutputBytes?: number;
  /**
   * Commands a client may have in flight before the proxy stops reading from it (default 8, QMP's own
   * recommendation). It also bounds how long one client's pipeline can make the others wait.
   */
  maxPendingPerClient?: number;
  /** Bytes of JSON tokens in one message from a client (default 64 MiB, QEMU's own limit, answered as QEMU does). */
  maxMessageBytes?: number;
  /**
   * Receive file descriptors that clients send with their commands (SCM_RIGHTS) and pass them on to
   * the backend, which must be able to (refused at start otherwise): a unix-socket QmpClient connected
   * with `unixFdPassing`, or a guest's client on the monitor route or on passthrough over a local
   * unix-socket libvirt connection.
   * Client sockets are then read with recvmsg on a poll loop instead of by Node. Default false.
   */
  fdPassing?: boolean;
  /** Per-command timeout on the backend (default: the backend client's own). */
  commandTimeoutMs?: number;
  logger?: ProxyLogger;
  /**
   * A refused command's reply in the words of whoever started the proxy: `libqemu proxy` names its own
   * verbs and `--allow` flag, not library calls. Default: the PolicyError's message and hint.
   */
  describeRefusal?: (err: PolicyError) => RefusalText;
}

export interface ProxyStats {
  /** Clients connected now. */
  clients: number;
  /** Clients accepted since start. */
  accepted: number;
  /** Clients dropped for not reading their output. */
  dropped: number;
  /** Commands relayed. */
  commands: number;
  /** Events fanned out (counted once per event, not per client). */
  events: number;
}

const DEFAULT_MAX_CLIENTS = 64;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
const DEFAULT_MAX_PENDING = 8;

export class QmpProxy implements AsyncDisposable {
  /** Starts serving `backend` (already opened) on `options.listen`. */
  static async start(backend: ProxyBackend, options: QmpProxyOptions): Promise<QmpProxy> {
    if (!backend || typeof backend.execute !== 'function' || typeof backend.on !== 'function') {
      throw new InvalidArgumentError('QmpProxy.start: backend must be an opened QmpClient', { hint: 'e.g. await QmpClient.connect({ path }) or await guest.qmp()' });
    }
    checkProxyOptions('QmpProxy.start', options);
    if (backend.runstate !== 'running') {
      throw new ProxyError(`the backend QMP client is ${backend.runstate}, not running`, { hint: 'open it first (QmpClient.connect / guest.qmp())' });
    }
    if (options.fdPassing) checkBackendPassesFds(backend);
    const greeting = await realGreeting(backend);
    const path = await prepareListenPath(options.listen);
    const proxy = new QmpProxy(backend, options, path, greeting);
    await proxy.listen();
    return proxy;
  }

  private readonly server: Server;
  private readonly fdReader: FdReader | undefined;
  private readonly connections = new Set<ClientConnection>();
  private nextClientId = 1;
  private readonly counters = { accepted: 0, dropped: 0, commands: 0, events: 0 };
  private readonly offs: (() => void)[] = [];
  private stopping: Promise<void> | undefined;
  private resolveDone!: (reason: string) => void;
  /** Resolves with the reason once the proxy has stopped (close(), or the backend went away). */
  readonly done: Promise<string>;

  private constructor(
    private readonly backend: ProxyBackend,
    private readonly options: QmpProxyOptions,
    /** The absolute path served on. */
    readonly path: string,
    /** What clients are greeted with: the real QEMU version. */
    readonly greeting: QmpGreeting,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    this.fdReader = options.fdPassing ? new FdReader() : undefined;
    // With fd passing Node must never read a client socket itself (its reads drop the fds).
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: this.fdReader !== undefined }, (socket) => this.accept(socket));
  }

  get clientCount(): number {
    return this.connections.size;
  }

  get stats(): ProxyStats {
    return { clients: this.connections.size, ...this.counters };
  }

  /** Stops listening, disconnects every client and removes the socket. The backend stays open (it is the caller's). */
  close(reason = 'closed'): Promise<void> {
    this.stopping ??= (async () => {
      for (const off of this.offs.splice(0)) off();
      this.fdReader?.stop();
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const c of [...this.connections]) c.close(`proxy ${reason}`);
      });
      await fs.unlink(this.path).catch(() => undefined);
      this.log('info', `proxy on ${this.path} stopped: ${reason}`);
      this.resolveDone(reason);
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ path: this.path, readableAll: false, writableAll: false }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // The 0700 directory keeps everyone else out during the instant before this chmod.
    await fs.chmod(this.path, 0o600);
    this.server.on('error', (err) => this.log('warn', `proxy server error: ${err.message}`));
    this.offs.push(
      this.backend.on('event', (ev) => this.fanOut(ev)),
      this.backend.on('runstate', (state) => {
        if (state === 'closing' || state === 'closed') void this.close('the backend QMP connection closed');
      }),
    );
    this.log('info', `proxy listening on ${this.path} (QEMU ${versionString(this.greeting)})`);
  }

  private accept(socket: Socket): void {
    const max = this.options.maxClients ?? DEFAULT_MAX_CLIENTS;
    if (this.stopping || this.connections.size >= max) {
      this.log('warn', `proxy turned a client away: ${this.stopping ? 'stopping' : `${max} clients already connected`}`);
      socket.destroy();
      return;
    }
    this.counters.accepted++;
    const conn = new ClientConnection(
      this.nextClientId++,
      socket,
      {
        greeting: { QMP: { version: this.greeting.version, capabilities: this.backend.oobEnabled ? ['oob'] : [] } },
        oobOffered: this.backend.oobEnabled,
        maxOutputBytes: this.options.maxClientOutputBytes ?? DEFAULT_MAX_OUTPUT,
        maxPending: this.options.maxPendingPerClient ?? DEFAULT_MAX_PENDING,
        maxMessageBytes: this.options.maxMessageBytes ?? QEMU_JSON_LIMITS.maxTokenBytes,
        ...(this.options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: this.options.commandTimeoutMs }),
        ...(this.fdReader ? { fdReader: this.fdReader } : {}),
      },
      {
        relay: (c, request, settler) => this.relay(c, request, settler),
        closed: (c, reason) => {
          this.connections.delete(c);
          if (reason.startsWith('dropped')) this.counters.dropped++;
          this.log('debug', `proxy client ${c.id} left: ${reason}`, { client: c.id });
        },
        log: (level, message, details) => this.log(level, message, details),
        toQmpError: (err) => toQmpError(err, this.options.describeRefusal),
      },
    );
    if (!conn.isClosed) this.connections.add(conn);
    this.log('debug', `proxy client ${conn.id} connected`, { client: conn.id });
  }

  private relay(client: ClientConnection, request: ClientRequest, settler: CommandSettler): void {
    this.counters.commands++;
    // Whatever happens here, the settler hears of it: it answers the client and closes the command's fds.
    try {
      let options = client.relayOptions;
      if (request.oob || request.fds.length > 0) {
        options = { ...options };
        if (request.oob) options.oob = true;
        if (request.fds.length > 0) options.fds = [...request.fds];
      }
      if (this.backend.executeTo) this.backend.executeTo(request.command, request.args, options, settler);
      else {
        this.backend.execute(request.command, request.args, options).then(
          (value) => settler.resolve(value),
          (err: unknown) => settler.reject(err),
        );
      }
    } catch (err) {
      settler.reject(err);
    }
  }


  private fanOut(ev: QmpEvent<string, unknown>): void {
    this.counters.events++;
    const msg: QmpMessage = { event: ev.event };
    if (ev.data !== undefined) msg.data = ev.data;
    msg.timestamp = ev.timestamp;
    for (const c of [...this.connections]) c.sendEvent(msg);
  }

  private log(level: 'debug' | 'info' | 'warn', message: string, details?: Record<string, unknown>): void {
    try {
      this.options.logger?.[level]?.(message, details);
    } catch {
      // logging must never break the proxy
    }
  }
}

/** fdPassing on a backend whose transport says it cannot pass fds: refused now, not at every client's command. */
function checkBackendPassesFds(backend: ProxyBackend): void {
  const transport = (backend as { transport?: QmpTransport }).transport;
  const caps = transport?.capabilities;
  if (!caps || caps.fdPassing) return; // a backend without a visible transport finds out per command (FdPassingError replies)
  const why = caps.fdPassingUnavailable;
  throw new ProxyError(`fdPassing: the backend (${transport.description}) cannot pass file descriptors${why ? `: ${why.reason}` : ''}`, {
    hint: why?.hint ?? 'connect the backend to a unix socket with { fdPassing: unixFdPassing }, or start the proxy without fdPassing',
  });
}

/** The backend's greeting, with the real version asked from QEMU when it was synthesised without one. */
async function realGreeting(backend: ProxyBackend): Promise<QmpGreeting> {
  const g = backend.greeting;
  if (g.version.qemu.major !== 0) return g;
  const v = (await backend.execute('query-version')) as QmpGreeting['version'];
  return { version: { qemu: v.qemu, package: v.package ?? '' }, capabilities: g.capabilities };
}

function versionString(g: QmpGreeting): string {
  const q = g.version.qemu;
  return `${q.major}.${q.minor}.${q.micro}`;
}

/** The serving options both proxies take (QmpProxy, PassthroughProxy), checked before anything starts. */
export function checkProxyOptions(where: string, options: Pick<QmpProxyOptions, 'maxClients' | 'maxClientOutputBytes' | 'maxPendingPerClient' | 'maxMessageBytes' | 'commandTimeoutMs'>): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`${where}: options must be an object with listen`);
  checkPositive('maxClients', options.maxClients);
  checkPositive('maxClientOutputBytes', options.maxClientOutputBytes);
  checkPositive('maxPendingPerClient', options.maxPendingPerClient);
  checkPositive('maxMessageBytes', options.maxMessageBytes);
  if (options.commandTimeoutMs !== undefined && !(Number.isFinite(options.commandTimeoutMs) && options.commandTimeoutMs >= 0)) {
    throw new InvalidArgumentError(`commandTimeoutMs must be ≥ 0 (0 = none), got ${String(options.commandTimeoutMs)}`);
  }
}

export function checkPositive(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(v)}`);
}
