import { InvalidArgumentError } from '../common/errors.js';
import type { DomainInfo, DomainState } from '../libvirt/domain.js';
import type { MigrationJob } from '../migration/engine.js';
import type { MigrateOptions } from '../migration/options.js';
import { GuestNotFoundError, GuestNotRunningError, MonitorUnavailableError } from './errors.js';
import type { GuestContext, GuestDomain, PassthroughReservation } from './guest-context.js';
import { GuestQmpClient, type QmpRoute } from './guest-client.js';
import { GuestEvents, type GuestEventStream, type GuestEventsOptions, type QemuEventName, type UncheckedEventName } from './guest-events.js';
import type { GuestMigrationDestination, GuestMigrationOutcome } from './guest-migration.js';
import { GuestMonitor } from './guest-monitor.js';
import { checkVia, isNoDomainError, isNotRunningError, isRunningState, qmpRoutes, type GuestQmpOptions } from './guest-routes.js';
import type { QmpTransport } from '../qmp/transport.js';
import { OwnershipPolicy } from './policy.js';
import { GuestTaint, parseTaints, type Taint } from './taint.js';
import type { GuestAgentOptions } from '../agent/index.js';
import { closeGuestAgent, guestAgent, type LibvirtGuestAgent } from './guest-agent.js';
import type { Duplex } from 'node:stream';
import { attachDevice, detachDevice, setMemory, setVcpus, updateDevice, type DeviceTarget, type GuestChangeOptions, type UpdateDeviceOptions } from './guest-devices.js';
import { GuestSnapshots } from './guest-snapshots.js';
import { guestStats, type GuestStats } from './guest-stats.js';
import { openGuestConsole, takeScreenshot, type ConsoleTarget, type GuestConsoleOptions, type GuestScreenshot } from './guest-console.js';
import { rebootGuest, shutdownGuest, type GuestRebootOptions, type GuestShutdownOptions } from './guest-power.js';

export type { GuestQmpOptions } from './guest-routes.js';

/** What `guest.migrate()` resolves to: the engine's result, plus the Guest on a destination Hypervisor. */
export type GuestMigrationResult = GuestMigrationOutcome<Guest>;

/**
 * One guest: libvirt owns its lifecycle (every lifecycle call is libvirt's), and `qmp()` reaches the
 * very same QEMU through a second monitor or libvirt's passthrough. The monitor connection, the event
 * streams and taint reporting each live in their own module; this class chooses the route.
 */
export class Guest {
  private readonly monitor: GuestMonitor;
  private readonly eventStreams: GuestEvents;
  private readonly taints: GuestTaint;
  private readonly passthroughClients = new Set<GuestQmpClient>();
  private closed = false;
  private snapshotRoom: GuestSnapshots | undefined;

  /** @internal use hv.guest() / hv.defineGuest() / hv.createGuest(). */
  constructor(
    private readonly context: GuestContext<Guest>,
    private readonly domain: GuestDomain,
  ) {
    this.eventStreams = new GuestEvents({
      guest: domain.name,
      context,
      // a listener only: the stream holds the process itself while its consumer awaits an event
      monitorClient: ({ handshakeTimeoutMs }) => this.openQmp({ via: 'monitor', validate: false, handshakeTimeoutMs }, { holdsProcess: false }),
    });
    this.taints = new GuestTaint({
      guest: domain.name,
      messages: () => domain.messages(),
      report: (report) => {
        this.eventStreams.tainted(report.taints);
        context.reportTaint(report);
      },
    });
    this.monitor = new GuestMonitor({
      guest: domain.name,
      domain,
      context,
      onChange: (ch) => {
        this.eventStreams.monitorChanged(ch);
        if (ch.type === 'reconnected') {
          this.taints.newRun(); // a new QEMU run: libvirt may have marked it again
          void this.taints.check().catch(() => undefined);
        }
      },
    });
  }

  get name(): string { return this.domain.name; }
  get uuid(): string { return this.domain.uuid; }

  /** The libvirt URI of the hypervisor this guest was found on. */
  get uri(): string {
    return this.context.uri;
  }

  /** True after close() (hv.guest() then hands out a fresh Guest). */
  get isClosed(): boolean {
    return this.closed;
  }

  // ---- lifecycle: libvirt's -----------------------------------------------------------------

  state(): Promise<DomainState> { return this.domain.state(); }
  info(): Promise<DomainInfo> { return this.domain.info(); }
  xml(options: { inactive?: boolean; secure?: boolean; migratable?: boolean } = {}): Promise<string> { return this.domain.xml(options); }

  /** Starts a defined guest. A stale monitor socket left by a killed QEMU is removed first. */
  async start(options: { paused?: boolean } = {}): Promise<void> {
    await this.monitor.prepareStart();
    await this.domain.start(options);
    this.monitor.newRun();
    this.taints.newRun();
  }

  /** Asks the guest to power off (`mode`: ACPI power button or guest agent); `wait` until it is off. See guest-power.ts. */
  shutdown(options?: GuestShutdownOptions): Promise<void> {
    return shutdownGuest({ name: this.name, domain: this.domain }, options);
  }

  destroy(): Promise<void> { return this.domain.destroy(); }
  suspend(): Promise<void> { return this.domain.suspend(); }
  resume(): Promise<void> { return this.domain.resume(); }
  /** Asks the guest to reboot (`mode`: ACPI or guest agent). */
  reboot(options?: GuestRebootOptions): Promise<void> {
    return rebootGuest({ name: this.name, domain: this.domain }, options);
  }

  /** A client of the QEMU guest agent, over libvirt's agent channel (see guest-agent.ts). */
  agent(options?: GuestAgentOptions): LibvirtGuestAgent {
    this.assertOpen();
    return guestAgent(this, () => this.context.agentTransport(), options);
  }

  reset(): Promise<void> { return this.domain.reset(); }

  /** Removes the persistent definition (a running guest keeps running, transient). */
  undefine(): Promise<void> { return this.domain.undefine(); }

  /** True while QEMU runs (running, paused, …). */
  async isRunning(): Promise<boolean> {
    return isRunningState((await this.domain.state()).state);
  }

  // ---- libvirt's own calls for what the ownership policy refuses over QMP: guest-devices.ts, guest-snapshots.ts, guest-console.ts

  /** Adds a device (virDomainAttachDeviceFlags). Default: live when running, plus config when persistent. */
  async attachDevice(xml: string, options?: GuestChangeOptions): Promise<void> { return attachDevice(this.room(), xml, options); }
  /** Removes a device (virDomainDetachDeviceFlags; the guest may take a moment to let go). Same defaults. */
  async detachDevice(xml: string, options?: GuestChangeOptions): Promise<void> { return detachDevice(this.room(), xml, options); }
  /** Changes a device, e.g. a CD-ROM's medium (virDomainUpdateDeviceFlags). Same defaults; `force` ejects a locked tray. */
  async updateDevice(xml: string, options?: UpdateDeviceOptions): Promise<void> { return updateDevice(this.room(), xml, options); }
  /** Sets the current memory in KiB (virDomainSetMemoryFlags; live needs a balloon). Same defaults. */
  async setMemory(kib: number, options?: GuestChangeOptions): Promise<void> { return setMemory(this.room(), kib, options); }
  /** Sets the number of virtual CPUs (virDomainSetVcpusFlags). Same defaults. */
  async setVcpus(count: number, options?: GuestChangeOptions): Promise<void> { return setVcpus(this.room(), count, options); }
  /** libvirt's statistics of this guest (virDomainListGetStats: `virsh domstats`), as a plain object. */
  async stats(): Promise<GuestStats> { this.assertOpen(); return guestStats(this.context); }
  /** The guest's snapshots: create(xml), list(), revert(name), delete(name). */
  get snapshots(): GuestSnapshots { return (this.snapshotRoom ??= new GuestSnapshots(this.domain)); }
  /** The serial console as a Node Duplex (virDomainOpenConsole); destroy() it to let go. */
  async console(options?: GuestConsoleOptions): Promise<Duplex> { return openGuestConsole(this.room(), options); }
  /** A screenshot as a Readable of image data (virDomainScreenshot: PNG or PPM, see its `mimeType`). */
  async screenshot(options?: { screen?: number }): Promise<GuestScreenshot> { return takeScreenshot(this.room(), options); }

  // ---- QMP ----------------------------------------------------------------------------------

  /** The second monitor's socket path from the domain XML (live when running), if it has one. */
  monitorSocket(): Promise<string | undefined> {
    return this.monitor.socketPath();
  }

  /** The QMP routes usable right now: 'monitor' (a second monitor that answers), 'passthrough' (running). */
  async qmpRoutes(): Promise<QmpRoute[]> {
    const running = await this.isRunning();
    if (!running) return [];
    const { local } = this.context;
    return qmpRoutes({ running, local, monitorSocket: local ? await this.monitor.socketPath() : undefined, monitorAnswers: () => this.monitor.reachable() });
  }

  /**
   * A QMP client on this guest, the same `QemuClient` interface whatever the route. Every command
   * passes the ownership policy first. Close it when done (the guest's shared monitor connection
   * closes with its last client).
   */
  qmp(options: GuestQmpOptions = {}): Promise<GuestQmpClient> {
    return this.openQmp(options, { holdsProcess: true });
  }

  /** guest.qmp(); `holdsProcess: false` for the facade's own listeners on the monitor route. */
  private async openQmp(options: GuestQmpOptions, how: { holdsProcess: boolean }): Promise<GuestQmpClient> {
    this.assertOpen();
    const via = checkVia(options.via, 'guest.qmp');
    const policy = new OwnershipPolicy(options.allow === undefined ? {} : { allow: options.allow });
    await this.assertRunning();
    let client: GuestQmpClient;
    if (via === 'passthrough') {
      client = await this.openPassthrough(policy, options);
    } else if (via === 'monitor') {
      client = await this.openMonitor(policy, options, options.handshakeTimeoutMs ?? 5000, how.holdsProcess);
    } else {
      // auto: the monitor when it answers from here (no monitor in the XML, a remote daemon, a socket
      // we may not open or one held by another client all say MonitorUnavailableError), else passthrough
      try {
        client = await this.openMonitor(policy, options, options.handshakeTimeoutMs ?? 1000, how.holdsProcess);
      } catch (err) {
        if (!(err instanceof MonitorUnavailableError)) throw err;
        client = await this.openPassthrough(policy, options);
      }
    }
    await this.taints.checkRoute(client.route);
    return client;
  }

  /**
   * @internal For a thread that serves QMP on this guest through libvirt's passthrough with its own
   * blocking calls (the passthrough proxy's thread): a libvirt connection of the hypervisor's reserved
   * for that thread, the guest's identity, and its QEMU events. Checks, as guest.qmp() does, that the
   * guest runs, and reports the route's taint. `lost` hears when the connection is gone.
   */
  async reservePassthrough(lost: (reason: Error) => void): Promise<PassthroughReservation> {
    this.assertOpen();
    await this.assertRunning();
    await this.taints.checkRoute('passthrough');
    const lane = await this.context.reserveLane(lost);
    return { guest: this.name, uuid: this.domain.uuid, uri: this.context.uri, lane, events: (filter) => this.context.qemuMonitorEvents(filter) };
  }

  /** libvirt's taint marks of this guest (custom-monitor, custom-argv, …), as of now. */
  async taint(): Promise<Taint[]> {
    return parseTaints(await this.domain.messages());
  }

  /**
   * libvirt domain events and QMP events in one stream, each tagged with its source, plus libqemu's
   * notices (monitor gaps, taint). On the passthrough route QMP name filters are handed to libvirt.
   */
  events<const N extends QemuEventName>(options: GuestEventsOptions<N> & { qmp: readonly N[] }): GuestEventStream<N>;
  /** Every QMP event (`qmp: true`), none, or names the types do not know (`uncheckedEventNames([...])`): untyped. */
  events(options?: GuestEventsOptions<QemuEventName | UncheckedEventName>): GuestEventStream;
  events(options: GuestEventsOptions = {}): GuestEventStream {
    this.assertOpen();
    return this.eventStreams.open(options);
  }

  /**
   * Live-migrates this guest to another libvirtd (a Hypervisor, or a libvirt URI): peer-to-peer, with
   * the second monitor moved into the destination's monitor directory, QEMU parameters through QMP,
   * progress, a watchdog and abort(). Await the job for the result, with the Guest on the destination
   * when it is a Hypervisor. See src/migration and the README's "Migration".
   */
  migrate(destination: GuestMigrationDestination<Guest> | string, options?: MigrateOptions): MigrationJob<GuestMigrationResult> {
    this.assertOpen();
    return this.context.migrate({
      destination,
      options,
      qmp: async () => {
        try {
          return await this.qmp({ timeoutMs: 10_000, validate: false }); // only well-known commands; supports() still reads the schema
        } catch {
          return undefined; // no route (not running, unreachable): libvirt's progress alone; qemuParameters then fail clearly
        }
      },
    });
  }

  /** Closes this guest's QMP clients, its shared monitor connection and its watchers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.eventStreams.endAll();
    for (const c of [...this.passthroughClients]) await c.close().catch(() => undefined);
    await this.monitor.close();
    await closeGuestAgent(this);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** What the facade rooms (devices, console) need of this guest. */
  private room(): DeviceTarget & ConsoleTarget {
    this.assertOpen();
    return { name: this.name, domain: this.domain, openStream: () => this.context.openStream() };
  }

  /**
   * For QMP: GuestNotFoundError if the guest is gone (a transient guest that stopped), GuestNotRunningError
   * (after removing its stale monitor sockets) if QEMU does not run.
   */
  private async assertRunning(): Promise<void> {
    const { state } = await this.domain.state().catch((err: unknown) => {
      if (isNoDomainError(err)) throw new GuestNotFoundError({ nameOrUuid: this.name, uri: this.context.uri, cause: err });
      throw err;
    });
    if (!isRunningState(state)) {
      await this.monitor.removeStaleSockets();
      throw new GuestNotRunningError({ guest: this.name, state });
    }
  }

  private assertOpen(): void {
    if (this.closed || !this.context.isOpen) {
      throw new InvalidArgumentError(`guest '${this.name}' was closed (or its hypervisor connection was)`, { hint: 'get it again with hv.guest(name) on an open Hypervisor' });
    }
  }

  private client(transport: QmpTransport, policy: OwnershipPolicy, route: QmpRoute, options: GuestQmpOptions): GuestQmpClient {
    return new GuestQmpClient(transport, {
      ...options.client,
      guest: this.name,
      route,
      policy,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.validate === undefined ? {} : { validate: options.validate }),
      ...(options.oob === undefined ? {} : { oob: options.oob }),
    });
  }

  private async openPassthrough(policy: OwnershipPolicy, options: GuestQmpOptions): Promise<GuestQmpClient> {
    const transport = this.context.passthroughTransport(options.events === undefined ? {} : { events: options.events });
    const client = this.client(transport, policy, 'passthrough', options);
    try {
      await client.open(options.signal === undefined ? {} : { signal: options.signal });
    } catch (err) {
      if (!isNotRunningError(err)) throw err;
      const state = await this.domain.state().then((s) => s.state, () => 'gone');
      throw new GuestNotRunningError({ guest: this.name, state, cause: err });
    }
    this.passthroughClients.add(client);
    client.on('runstate', (s) => s === 'closed' && this.passthroughClients.delete(client));
    return client;
  }

  private openMonitor(policy: OwnershipPolicy, options: GuestQmpOptions, handshakeTimeoutMs: number, holdsProcess: boolean): Promise<GuestQmpClient> {
    return this.monitor.connect((transport) => this.client(transport, policy, 'monitor', options), {
      handshakeTimeoutMs,
      holdsProcess,
      ...(options.oob === undefined ? {} : { oob: options.oob }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  }
}
