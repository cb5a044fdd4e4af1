import { dirname } from 'node:path';
import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { Domain, DomainInfo, DomainState } from '../libvirt/domain.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { DomainEventKind, EventStream, LifecycleEventName } from '../libvirt/events.js';
import type { QemuClientOptions } from '../schema/client.js';
import { DomainXml } from './domain-xml.js';
import { GuestNotFoundError, GuestNotRunningError, MonitorUnavailableError } from './errors.js';
import { GuestQmpClient, type QmpRoute } from './guest-client.js';
import type { Hypervisor } from './hypervisor.js';
import { MonitorHub } from './monitor-hub.js';
import { probeSocket } from '../common/unix-socket.js';
import { removeStaleSocket } from './monitor-dir.js';
import type { MonitorConnectionChange } from './monitor-transport.js';
import { PassthroughTransport, libvirtEventFilter } from './passthrough-transport.js';
import { OwnershipPolicy } from './policy.js';
import { TaintTracker, parseTaints, type Taint } from './taint.js';
import type { MigrationJob } from '../migration/engine.js';
import { migrateGuest, type GuestMigrationResult } from '../migration/guest-migration.js';
import type { GuestAgentOptions } from '../agent/index.js';
import { agentLifecycleReason, agentLifecycleState, closeGuestAgent, guestAgent, type LibvirtGuestAgent } from './guest-agent.js';
import { rebootGuest, shutdownGuest, type GuestRebootOptions, type GuestShutdownOptions } from './guest-power.js';
import type { MigrateOptions } from '../migration/options.js';

export type QmpVia = 'auto' | QmpRoute;

export interface GuestQmpOptions {
  /** How to reach QEMU (default 'auto': the second monitor when reachable from this host, else passthrough). */
  via?: QmpVia;
  /** Commands this client may send although libvirt owns the state they change (or 'all'). */
  allow?: readonly string[] | 'all';
  /** Negotiate out-of-band execution (monitor route only; passthrough has none). */
  oob?: boolean;
  /** Default per-command timeout (ms; default 30 000). */
  timeoutMs?: number;
  /** Check commands against the connected QEMU's schema before sending (default true). */
  validate?: boolean;
  /** Passthrough: only these QEMU events, filtered by libvirt itself. */
  events?: readonly string[];
  /** Monitor handshake limit (ms; default 5000, 1000 when 'auto' may still fall back to passthrough). */
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Anything else QemuClient accepts (logger, onTraffic, onSchemaWarning, …). */
  client?: Omit<QemuClientOptions, 'timeoutMs' | 'validate' | 'oob'>;
}

interface EventBase {
  guest: string;
  /** When libqemu received it. */
  at: Date;
}

/** One event of `guest.events()`: libvirt's, QEMU's (through QMP), or libqemu's own notices. */
export type GuestEvent =
  | (EventBase & { source: 'libvirt'; kind: 'lifecycle'; event: LifecycleEventName; detail: string })
  | (EventBase & { source: 'libvirt'; kind: 'reboot' })
  /** The guest agent connected to or disconnected from its channel. */
  | (EventBase & { source: 'libvirt'; kind: 'agent-lifecycle'; state: 'connected' | 'disconnected'; reason: string })
  | (EventBase & {
      source: 'qmp';
      kind: 'qmp';
      route: QmpRoute;
      event: string;
      data: Record<string, unknown> | undefined;
      timestamp: { seconds: number; microseconds: number };
    })
  /** The monitor connection dropped: QMP events until the matching 'qmp-reconnected' are lost. */
  | (EventBase & { source: 'libqemu'; kind: 'qmp-disconnected'; reason: string })
  | (EventBase & { source: 'libqemu'; kind: 'qmp-reconnected'; gapMs: number })
  | (EventBase & { source: 'libqemu'; kind: 'taint'; taints: Taint[] });

type LibqemuNotice = Extract<GuestEvent, { source: 'libqemu' }>;

export interface GuestEventsOptions {
  /** libvirt domain events: true (default: lifecycle, reboot and agent-lifecycle), false, or the kinds wanted. */
  libvirt?: boolean | DomainEventKind[];
  /** QMP events: true (default: all), false, or the names wanted (handed down to libvirt on passthrough). */
  qmp?: boolean | readonly string[];
  /** Route for QMP events (default 'auto'). */
  via?: QmpVia;
  /** Queue capacity (default 1000). */
  bufferSize?: number;
  overflow?: OverflowPolicy;
  /** Ends the stream. */
  signal?: AbortSignal;
}

/** The stream `guest.events()` returns; `ready` resolves once every source is subscribed. */
export interface GuestEventStream extends AsyncIterableIterator<GuestEvent> {
  readonly ready: Promise<void>;
  /** Which route delivers QMP events (known once ready). */
  readonly qmpRoute: QmpRoute | undefined;
  /** Stops the stream and unsubscribes everywhere. */
  return(): Promise<IteratorResult<GuestEvent>>;
}

const RUNNING_STATES = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

/**
 * One guest: libvirt owns its lifecycle (every lifecycle call is libvirt's), and `qmp()` reaches the
 * very same QEMU through a second monitor or libvirt's passthrough.
 */
export class Guest {
  private hub: MonitorHub | undefined;
  private watcher: { stop(): Promise<void> } | undefined;
  private readonly taints = new TaintTracker();
  private readonly noticeListeners = new Set<(n: LibqemuNotice) => void>();
  private readonly passthroughClients = new Set<GuestQmpClient>();
  private readonly streamEnders = new Set<(err?: unknown) => void>();
  private readonly taintChecked = new Set<QmpRoute>();
  private closed = false;

  /** @internal use hv.guest() / hv.defineGuest() / hv.createGuest(). */
  constructor(
    readonly hypervisor: Hypervisor,
    /** The libvirt domain, for anything the facade does not wrap. */
    readonly domain: Domain,
  ) {}

  get name(): string {
    return this.domain.name;
  }

  get uuid(): string {
    return this.domain.uuid;
  }

  /** True after close() (hv.guest() then hands out a fresh Guest). */
  get isClosed(): boolean {
    return this.closed;
  }

  // ---- lifecycle: libvirt's -----------------------------------------------------------------

  state(): Promise<DomainState> {
    return this.domain.state();
  }

  info(): Promise<DomainInfo> {
    return this.domain.info();
  }

  xml(options: { inactive?: boolean; secure?: boolean; migratable?: boolean } = {}): Promise<string> {
    return this.domain.xml(options);
  }

  /** Starts a defined guest. A stale monitor socket left by a killed QEMU is removed first. */
  async start(options: { paused?: boolean } = {}): Promise<void> {
    if (this.hypervisor.local) {
      for (const m of DomainXml.parse(await this.domain.xml({ inactive: true })).monitorSockets()) {
        // libqemu's own directory is (re)created if the temp dir was cleaned; anyone else's is left as it is
        if (dirname(m.path) === this.hypervisor.monitorDir) await this.hypervisor.prepareMonitorDir(this.hypervisor.monitorDir);
        await removeStaleSocket(m.path, this.name).catch(() => undefined);
      }
    }
    await this.domain.start(options);
    this.taintChecked.clear(); // a new QEMU run
  }

  /** Asks the guest to power off (`mode`: ACPI power button or guest agent); `wait` until it is off. See guest-power.ts. */
  shutdown(options?: GuestShutdownOptions): Promise<void> {
    return shutdownGuest(this, options);
  }

  destroy(): Promise<void> {
    return this.domain.destroy();
  }

  suspend(): Promise<void> {
    return this.domain.suspend();
  }

  resume(): Promise<void> {
    return this.domain.resume();
  }

  /** Asks the guest to reboot (`mode`: ACPI or guest agent). */
  reboot(options?: GuestRebootOptions): Promise<void> {
    return rebootGuest(this, options);
  }

  /** A client of the QEMU guest agent, over libvirt's agent channel (see guest-agent.ts). */
  agent(options?: GuestAgentOptions): LibvirtGuestAgent {
    this.assertOpen();
    return guestAgent(this, { uri: this.hypervisor.uri, uuid: this.uuid, name: this.name }, options);
  }

  reset(): Promise<void> {
    return this.domain.reset();
  }

  /** Removes the persistent definition (a running guest keeps running, transient). */
  undefine(): Promise<void> {
    return this.domain.undefine();
  }

  /** True while QEMU runs (running, paused, …). */
  async isRunning(): Promise<boolean> {
    return RUNNING_STATES.has((await this.domain.state()).state);
  }

  // ---- QMP ----------------------------------------------------------------------------------

  /** The second monitor's socket path from the domain XML (live when running), if it has one. */
  async monitorSocket(): Promise<string | undefined> {
    const running = await this.isRunning();
    return DomainXml.parse(await this.domain.xml({ inactive: !running })).monitorSockets()[0]?.path;
  }

  /** The QMP routes usable right now: 'monitor' (reachable second monitor), 'passthrough' (running). */
  async qmpRoutes(): Promise<QmpRoute[]> {
    if (!(await this.isRunning())) return [];
    const routes: QmpRoute[] = [];
    if (this.hub?.transport?.connected || (await this.monitorReachable())) routes.push('monitor');
    routes.push('passthrough');
    return routes;
  }

  /**
   * A QMP client on this guest, the same `QemuClient` interface whatever the route. Every command
   * passes the ownership policy first. Close it when done (the guest's shared monitor connection
   * closes with its last client).
   */
  async qmp(options: GuestQmpOptions = {}): Promise<GuestQmpClient> {
    this.assertOpen();
    const via = options.via ?? 'auto';
    if (via !== 'auto' && via !== 'monitor' && via !== 'passthrough') {
      throw new InvalidArgumentError(`guest.qmp: via must be 'auto', 'monitor' or 'passthrough', got ${JSON.stringify(via)}`, {
        hint: "'monitor' = the guest's second QMP socket, 'passthrough' = through libvirt (virDomainQemuMonitorCommand)",
      });
    }
    const policy = new OwnershipPolicy(options.allow === undefined ? {} : { allow: options.allow });
    const state = await this.domain.state().catch((err: unknown) => {
      // a transient guest disappears when it stops
      if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN') throw new GuestNotFoundError(this.name, this.hypervisor.uri, err);
      throw err;
    });
    if (!RUNNING_STATES.has(state.state)) {
      await this.removeStaleSockets();
      throw new GuestNotRunningError(this.name, state.state);
    }
    let client: GuestQmpClient;
    if (via === 'passthrough') {
      client = await this.openPassthrough(policy, options);
    } else if (via === 'monitor') {
      client = await this.openMonitor(policy, options, options.handshakeTimeoutMs ?? 5000);
    } else {
      // auto: the monitor when it answers from here (no monitor in the XML, a remote daemon, a socket
      // we may not open or one held by another client all say MonitorUnavailableError), else passthrough
      try {
        client = await this.openMonitor(policy, options, options.handshakeTimeoutMs ?? 1000);
      } catch (err) {
        if (!(err instanceof MonitorUnavailableError)) throw err;
        client = await this.openPassthrough(policy, options);
      }
    }
    // libvirt marks the guest when QEMU starts (custom-argv) and on the first passthrough command
    // (custom-monitor): one look per route and QEMU run is enough, the tracker reports each mark once.
    if (!this.taintChecked.has(client.route)) {
      this.taintChecked.add(client.route);
      await this.reportTaint();
    }
    return client;
  }

  /** libvirt's taint marks of this guest (custom-monitor, custom-argv, …), as of now. */
  async taint(): Promise<Taint[]> {
    return parseTaints(await this.domain.messages());
  }

  /**
   * libvirt domain events and QMP events in one stream, each tagged with its source, plus libqemu's
   * notices (monitor gaps, taint). On the passthrough route QMP name filters are handed to libvirt.
   */
  events(options: GuestEventsOptions = {}): GuestEventStream {
    this.assertOpen();
    checkEventsOptions(options);
    const queue = new BoundedQueue<GuestEvent>({
      capacity: options.bufferSize ?? 1000,
      overflow: options.overflow ?? 'error',
      what: `events of guest '${this.name}'`,
      onClose: () => void teardown(),
    });
    const stops: Array<() => Promise<void> | void> = [];
    let tornDown = false;
    const teardown = async () => {
      if (tornDown) return;
      tornDown = true;
      for (const stop of stops.splice(0)) await Promise.resolve(stop()).catch(() => undefined);
    };
    /** Ends the stream (a source ended or failed, the signal fired, the guest closed) and unsubscribes. */
    const finish = (err?: unknown) => {
      queue.end(err);
      void teardown();
    };
    const onAbort = () => finish();
    if (options.signal?.aborted) queueMicrotask(onAbort);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    stops.push(() => options.signal?.removeEventListener('abort', onAbort));
    this.streamEnders.add(finish);
    stops.push(() => void this.streamEnders.delete(finish));
    let route: QmpRoute | undefined;

    // A consumer waiting for events is a reason to stay alive (libvirt's event thread does not hold
    // the process open); released when the stream ends.
    const keepAlive = setInterval(() => {}, 1 << 30);
    stops.push(() => clearInterval(keepAlive));

    const onNotice = (n: LibqemuNotice) => queue.push(n);
    this.noticeListeners.add(onNotice);
    stops.push(() => void this.noticeListeners.delete(onNotice));

    /** Pumps one libvirt event stream into this one; its end (or failure) ends this stream. */
    const pump = <T>(source: EventStream<T>, toEvent: (ev: T) => GuestEvent) => {
      stops.push(() => source.return().then(() => undefined));
      void (async () => {
        try {
          for await (const ev of source) queue.push(toEvent(ev));
          finish();
        } catch (err) {
          finish(err);
        }
      })();
      return source.ready;
    };

    const ready = (async () => {
      const libvirtKinds = options.libvirt === false ? [] : options.libvirt === true || options.libvirt === undefined ? (['lifecycle', 'reboot', 'agent-lifecycle'] as DomainEventKind[]) : options.libvirt;
      if (libvirtKinds.length > 0) {
        await pump(this.hypervisor.connection.domainEvents({ domain: this.domain, kinds: libvirtKinds, bufferSize: options.bufferSize ?? 1000 }), (ev): GuestEvent => {
          const base = { guest: this.name, at: new Date(), source: 'libvirt' as const };
          if (ev.kind === 'agent-lifecycle') return { ...base, kind: 'agent-lifecycle', state: agentLifecycleState(ev.state), reason: agentLifecycleReason(ev.reason) };
          return ev.kind === 'lifecycle' ? { ...base, kind: 'lifecycle', event: ev.event, detail: ev.detail } : { ...base, kind: 'reboot' };
        });
      }
      if (options.qmp === false || tornDown) return;
      const names = Array.isArray(options.qmp) ? (options.qmp as readonly string[]) : undefined;
      const via = options.via ?? 'auto';
      if (via !== 'passthrough') {
        // auto falls back to libvirt's QEMU events, which also cover a guest that is not running yet
        const client = await this.qmp({ via: 'monitor', validate: false, handshakeTimeoutMs: via === 'auto' ? 1000 : 5000 }).catch((err: unknown) => {
          if (via === 'auto' && (err instanceof MonitorUnavailableError || err instanceof GuestNotRunningError)) return undefined;
          throw err;
        });
        if (client) {
          route = 'monitor';
          stops.push(() => client.close());
          const wanted = names ? new Set(names) : undefined;
          stops.push(
            client.on('event', (ev) => {
              if (wanted && !wanted.has(ev.event)) return;
              queue.push({ source: 'qmp', kind: 'qmp', route: 'monitor', guest: this.name, at: new Date(), event: ev.event, data: ev.data as Record<string, unknown> | undefined, timestamp: ev.timestamp });
            }),
          );
          // the shared monitor closes for good only with the guest or hypervisor
          stops.push(client.on('runstate', (state) => state === 'closed' && finish()));
          if (tornDown) await client.close();
          return;
        }
      }
      // libvirt relays QEMU's events for the domain, across restarts, with the name filter applied by libvirt
      route = 'passthrough';
      await pump(this.hypervisor.connection.qemuMonitorEvents({ domain: this.domain, ...libvirtEventFilter(names), bufferSize: options.bufferSize ?? 1000 }), (ev): GuestEvent => ({
        source: 'qmp',
        kind: 'qmp',
        route: 'passthrough',
        guest: this.name,
        at: new Date(),
        event: ev.event,
        data: ev.data,
        timestamp: ev.timestamp,
      }));
    })();
    ready.catch(finish);

    Object.defineProperty(queue, 'qmpRoute', { get: () => route, enumerable: true });
    return Object.assign(queue, { ready }) as BoundedQueue<GuestEvent> & GuestEventStream;
  }

  /**
   * Live-migrates this guest to another libvirtd (a Hypervisor, or a libvirt URI): peer-to-peer, with
   * the second monitor moved into the destination's monitor directory, QEMU parameters through QMP,
   * progress, a watchdog and abort(). Await the job for the result, with the Guest on the destination
   * when it is a Hypervisor. See src/migration and the README's "Migration".
   */
  migrate(destination: Hypervisor | string, options?: MigrateOptions): MigrationJob<GuestMigrationResult> {
    this.assertOpen();
    return migrateGuest(this, destination, options);
  }

  /** Closes this guest's QMP clients, its shared monitor connection and its watchers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const end of [...this.streamEnders]) end();
    for (const c of [...this.passthroughClients]) await c.close().catch(() => undefined);
    await this.hub?.close();
    this.hub = undefined;
    await this.watcher?.stop();
    this.watcher = undefined;
    await closeGuestAgent(this);
  }

  // ---- internals ----------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed || !this.hypervisor.isOpen) {
      throw new InvalidArgumentError(`guest '${this.name}' was closed (or its hypervisor connection was)`, { hint: 'get it again with hv.guest(name) on an open Hypervisor' });
    }
  }

  private clientOptions(policy: OwnershipPolicy, route: QmpRoute, options: GuestQmpOptions) {
    return {
      ...options.client,
      guest: this.name,
      route,
      policy,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.validate === undefined ? {} : { validate: options.validate }),
      ...(options.oob === undefined ? {} : { oob: options.oob }),
    };
  }

  private async openPassthrough(policy: OwnershipPolicy, options: GuestQmpOptions): Promise<GuestQmpClient> {
    const transport = new PassthroughTransport(this.hypervisor.connection, this.domain, options.events === undefined ? {} : { events: options.events });
    const client = new GuestQmpClient(transport, this.clientOptions(policy, 'passthrough', options));
    try {
      await client.open(options.signal === undefined ? {} : { signal: options.signal });
    } catch (err) {
      throw await this.explainNotRunning(err);
    }
    this.passthroughClients.add(client);
    client.on('runstate', (s) => s === 'closed' && this.passthroughClients.delete(client));
    return client;
  }

  private async openMonitor(policy: OwnershipPolicy, options: GuestQmpOptions, handshakeTimeoutMs: number): Promise<GuestQmpClient> {
    if (!this.hypervisor.local) {
      throw new MonitorUnavailableError(this.name, undefined, `the hypervisor ${this.hypervisor.uri} is not on this host, so its monitor sockets are out of reach`, "use guest.qmp({ via: 'passthrough' }) (or 'auto')", undefined, 'remote');
    }
    // no hub (and no lifecycle watcher) for a guest that has no second monitor at all
    if (!this.hub) await this.requireMonitorPath();
    this.hub ??= new MonitorHub({
      guest: this.name,
      resolvePath: () => this.requireMonitorPath(),
      handshakeTimeoutMs,
      ...(options.oob === undefined ? {} : { oob: options.oob }),
      onConnectionChange: (ch) => this.onMonitorChange(ch),
    });
    this.ensureWatcher();
    // QEMU restarted and the lifecycle event has not brought the shared connection back yet: dial now
    if (this.hub.transport && !this.hub.transport.connected) await this.hub.transport.reconnect(options.signal).catch(() => undefined);
    const client = new GuestQmpClient(this.hub.channel(), this.clientOptions(policy, 'monitor', options));
    try {
      await client.open(options.signal === undefined ? {} : { signal: options.signal });
    } catch (err) {
      if (err instanceof MonitorUnavailableError && err.reason === 'stale') {
        await this.removeStaleSockets();
        if (!(await this.isRunning())) throw new GuestNotRunningError(this.name, (await this.domain.state()).state, err);
      }
      throw err;
    }
    return client;
  }

  private async requireMonitorPath(): Promise<string> {
    const path = DomainXml.parse(await this.domain.xml()).monitorSockets()[0]?.path;
    if (!path) {
      throw new MonitorUnavailableError(this.name, undefined, 'the guest has no second QMP monitor in its domain XML', "define it with hv.defineGuest(xml, { qmpSocket: true }), or use guest.qmp({ via: 'passthrough' })", undefined, 'no-monitor');
    }
    return path;
  }

  private async monitorReachable(): Promise<boolean> {
    if (!this.hypervisor.local) return false;
    const path = DomainXml.parse(await this.domain.xml()).monitorSockets()[0]?.path;
    if (!path) return false;
    return (await probeSocket(path, 500)) === 'open';
  }

  private async removeStaleSockets(): Promise<void> {
    if (!this.hypervisor.local) return;
    const running = await this.isRunning();
    for (const m of DomainXml.parse(await this.domain.xml({ inactive: !running })).monitorSockets()) {
      await removeStaleSocket(m.path, this.name).catch(() => undefined);
    }
  }

  private async explainNotRunning(err: unknown): Promise<unknown> {
    if (err instanceof LibvirtError && (err.codeName === 'VIR_ERR_OPERATION_INVALID' || err.codeName === 'VIR_ERR_NO_DOMAIN')) {
      const state = await this.domain.state().then((s) => s.state, () => 'gone');
      return new GuestNotRunningError(this.name, state, err);
    }
    return err;
  }

  private notify(n: LibqemuNotice): void {
    for (const fn of [...this.noticeListeners]) fn(n);
  }

  private onMonitorChange(ch: MonitorConnectionChange): void {
    if (ch.type === 'disconnected') {
      this.notify({ source: 'libqemu', kind: 'qmp-disconnected', guest: this.name, at: ch.at, reason: ch.reason });
      // QEMU may still be (or already again) running, e.g. if a lifecycle event was missed: try shortly.
      setTimeout(() => void this.reconnectIfRunning(3), 250).unref();
    } else {
      this.notify({ source: 'libqemu', kind: 'qmp-reconnected', guest: this.name, at: ch.at, gapMs: ch.gapMs });
      this.taintChecked.clear(); // a new QEMU run
      void this.reportTaint().catch(() => undefined);
    }
  }

  /** Dials the monitor again when libvirt says QEMU runs; a few tries, the socket may lag the event. */
  private async reconnectIfRunning(tries: number): Promise<void> {
    for (let i = 0; i < tries; i++) {
      const monitor = this.hub?.transport;
      if (this.closed || !monitor || monitor.connected) return;
      const running = await this.isRunning().catch(() => false);
      if (running) {
        try {
          await monitor.reconnect();
          return;
        } catch {
          // not there yet (or stale): retry below
        }
      } else if (i > 0) {
        return; // stopped: the 'started' event will bring us back
      }
      await new Promise((r) => setTimeout(r, 100 * (i + 1)));
    }
  }

  /** Follows libvirt's lifecycle events: after 'started', the monitor connection is dialled again. */
  private ensureWatcher(): void {
    if (this.watcher) return;
    const stream = this.hypervisor.connection.domainEvents({ domain: this.domain, kinds: ['lifecycle'], bufferSize: 64, overflow: 'drop-oldest' });
    const loop = (async () => {
      try {
        for await (const ev of stream) {
          if (ev.kind === 'lifecycle' && (ev.event === 'started' || ev.event === 'resumed')) void this.reconnectIfRunning(10);
        }
      } catch {
        // the libvirt connection went away: nothing left to follow
      }
    })();
    this.watcher = {
      stop: async () => {
        await stream.return();
        await loop;
      },
    };
  }

  private async reportTaint(): Promise<void> {
    const fresh = this.taints.fresh(await this.domain.messages().catch(() => [] as string[]));
    if (fresh.length === 0) return;
    this.notify({ source: 'libqemu', kind: 'taint', guest: this.name, at: new Date(), taints: fresh });
    this.hypervisor.reportTaint({ guest: this.name, taints: fresh });
  }
}

function checkEventsOptions(options: GuestEventsOptions): void {
  const bad = (what: string, hint: string) => new InvalidArgumentError(`guest.events: ${what}`, { hint });
  if (options === null || typeof options !== 'object') throw bad('options must be an object', 'e.g. guest.events({ qmp: ["STOP"] })');
  if (options.via !== undefined && !['auto', 'monitor', 'passthrough'].includes(options.via)) {
    throw bad(`via must be 'auto', 'monitor' or 'passthrough', got ${JSON.stringify(options.via)}`, "omit it for 'auto'");
  }
  const { libvirt, qmp, bufferSize } = options;
  if (libvirt !== undefined && typeof libvirt !== 'boolean' && !(Array.isArray(libvirt) && libvirt.every((k) => k === 'lifecycle' || k === 'reboot' || k === 'agent-lifecycle'))) {
    throw bad(`libvirt must be true, false or a list of 'lifecycle'/'reboot'/'agent-lifecycle', got ${JSON.stringify(libvirt)}`, "e.g. { libvirt: ['lifecycle'] }");
  }
  if (qmp !== undefined && typeof qmp !== 'boolean') {
    if (!Array.isArray(qmp)) throw bad(`qmp must be true, false or a list of event names, got ${JSON.stringify(qmp)}`, "e.g. { qmp: ['STOP', 'RESUME'] }");
    libvirtEventFilter(qmp); // validates the names
  }
  if (bufferSize !== undefined && (!Number.isInteger(bufferSize) || bufferSize < 1)) {
    throw bad(`bufferSize must be a positive integer, got ${String(bufferSize)}`, 'the default is 1000');
  }
}
