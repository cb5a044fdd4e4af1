import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import { virStreamFlags } from '../generated/libvirt/enums.js';
import { Connection, type ConnectionEvents, type OpenOptions } from '../libvirt/connection.js';
import type { Domain, DomainStateName } from '../libvirt/domain.js';
import type { EventStream } from '../libvirt/events.js';
import type { StreamTarget } from '../qmp/stream-transport.js';
import { QemuClient, type QemuConnectOptions } from '../schema/client.js';
import { DomainXml } from '../domain/domain-xml.js';
import { GuestNotFoundError } from './errors.js';
import type { GuestContext, GuestEventSource } from './guest-context.js';
import { LibvirtAgentTransport } from './guest-agent.js';
import type { GuestQmpClient, QmpRoute } from './guest-client.js';
import { migrateGuest } from './guest-migration.js';
import { readMonitorSockets } from './guest-monitor.js';
import { isNoDomainError, isRunningState, qmpRoutes } from './guest-routes.js';
import { Guest, type GuestQmpOptions } from './guest.js';
import { libvirtPassthroughTarget, PassthroughTransport } from './passthrough-transport.js';
import { createdInThisProcess, defaultMonitorDir, ensureMonitorDir, qemuUserFor, removeCreatedMonitorDir, type QemuUser } from '../domain/monitor-dir.js';
import { placeDaemon, remoteReason, type HostPlacement } from '../domain/host-identity.js';
import type { TaintReport } from './taint.js';

export interface HypervisorOptions extends OpenOptions {
  /**
   * Directory for the second-monitor sockets of guests this hypervisor defines (private, 0700, owned
   * by QEMU's user). Default: a libqemu directory under the temp dir, one per URI, removed again by
   * close() when libqemu created it in this process, it is empty and no defined guest expects a socket
   * in it. A directory given here is never removed.
   */
  monitorDir?: string;
  /** The uid/gid QEMU runs as (default: detected from the URI; see README). */
  qemuUser?: QemuUser;
  /** Taint marks, once per guest and mark (default: process.emitWarning). */
  onTaint?: (report: TaintReport) => void;
}

/**
 * What a Hypervisor reports about its libvirt connection (the Connection's own events, forwarded):
 * 'disconnected' when libvirtd went away, 'reconnected' with the gap once it is back, 'reconnect-failed'
 * when reconnection gave up, 'lane-retired' when a call missed its deadline and its lane was replaced.
 */
export type HypervisorEvents = ConnectionEvents;

export interface GuestSummary {
  name: string;
  uuid: string;
  state: DomainStateName;
  /** The QMP routes it offers: 'monitor' (a second monitor on this host), 'passthrough' (running). */
  routes: QmpRoute[];
  /** The second monitor's socket, when the XML has one. */
  monitorSocket: string | undefined;
}

export interface DefineGuestOptions {
  /**
   * Add a second QMP monitor: `true` = a socket in the hypervisor's private monitor directory (named
   * after the guest's UUID), a string = that path (its directory must already be private).
   */
  qmpSocket?: boolean | string;
}

/** What `openQmp` accepts: a guest by name or UUID (through libvirt), or a plain QMP endpoint. */
export type OpenQmpTarget = { name: string } | { uuid: string } | StreamTarget;

/**
 * A libvirt connection seen as a set of guests: lifecycle through libvirt, QMP through `guest.qmp()`.
 *
 *   const hv = await Hypervisor.connect('qemu:///system');
 *   const guest = await hv.guest('web1');
 *   const qmp = await guest.qmp();            // second monitor if reachable, else libvirt passthrough
 *   await qmp.execute('query-status');
 */
export class Hypervisor extends EventEmitter<HypervisorEvents> implements AsyncDisposable {
  private readonly guestCache = new Map<string, Guest>();
  private closing: Promise<void> | undefined;

  private constructor(
    /** The libvirt connection, for anything the facade does not wrap. */
    readonly connection: Connection,
    /**
     * Where the daemon runs: on this machine when reached through a unix socket, or when its host UUID is
     * this machine's (SMBIOS, /etc/machine-id, LIBQEMU_SAME_HOST_UUIDS); `reason` says which.
     */
    readonly placement: HostPlacement,
    /** QEMU's uid/gid for this daemon. */
    readonly qemuUser: QemuUser,
    /** Where `qmpSocket: true` puts monitor sockets. */
    readonly monitorDir: string,
    private readonly ownMonitorDir: boolean,
    private readonly onTaint: ((report: TaintReport) => void) | undefined,
  ) {
    super();
    // The connection's own notifications, under the same names (none is 'error', so none throws unheard).
    connection.on('disconnected', (reason) => this.emit('disconnected', reason));
    connection.on('reconnected', (gap) => this.emit('reconnected', gap));
    connection.on('reconnect-failed', (err) => this.emit('reconnect-failed', err));
    connection.on('lane-retired', (info) => this.emit('lane-retired', info));
  }

  /** Connects to libvirt (default: LIBVIRT_DEFAULT_URI, else libvirt's default). */
  static async connect(uri?: string, options: HypervisorOptions = {}): Promise<Hypervisor> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Hypervisor.connect: options must be an object');
    if (options.monitorDir !== undefined && (typeof options.monitorDir !== 'string' || !options.monitorDir.startsWith('/'))) {
      throw new InvalidArgumentError(`monitorDir must be an absolute path, got ${JSON.stringify(options.monitorDir)}`, { hint: 'e.g. /run/libqemu/qmp' });
    }
    if (options.qemuUser !== undefined && !(Number.isInteger(options.qemuUser?.uid) && Number.isInteger(options.qemuUser?.gid))) {
      throw new InvalidArgumentError('qemuUser must be { uid, gid } integers', { hint: 'omit it to detect QEMU\'s user from the URI' });
    }
    const open: OpenOptions = {};
    if (options.readOnly !== undefined) open.readOnly = options.readOnly;
    if (options.callTimeoutMs !== undefined) open.callTimeoutMs = options.callTimeoutMs;
    if (options.lanes !== undefined) open.lanes = options.lanes;
    // A Hypervisor survives a libvirtd restart unless told not to.
    open.reconnect = options.reconnect ?? true;
    const connection = await Connection.open(uri, open);
    try {
      const placement = await placeDaemon(connection.uri, () => connection.getCapabilities());
      const local = placement.local;
      const qemuUser = options.qemuUser ?? (await qemuUserFor(connection.uri));
      const monitorDir = options.monitorDir ?? defaultMonitorDir(connection.uri, qemuUser.uid);
      return new Hypervisor(connection, placement, qemuUser, monitorDir, options.monitorDir === undefined, options.onTaint);
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  get uri(): string {
    return this.connection.uri;
  }

  /** Whether the daemon runs on this machine, so its guests' second-monitor sockets are reachable (see `placement`). */
  get local(): boolean {
    return this.placement.local;
  }

  get isOpen(): boolean {
    // While libvirtd restarts the hypervisor stays open: calls wait for the reconnection.
    return this.closing === undefined && (this.connection.isOpen || this.connection.isReconnecting);
  }

  /** Every guest (running and defined), with its state and the QMP routes it offers. */
  async guests(): Promise<GuestSummary[]> {
    return summarizeGuests(await this.connection.listDomains({ active: true, inactive: true }), { local: this.local });
  }

  /** The guest with this name or UUID; GuestNotFoundError if there is none. */
  async guest(nameOrUuid: string): Promise<Guest> {
    this.assertOpen();
    if (typeof nameOrUuid !== 'string' || nameOrUuid === '') {
      throw new InvalidArgumentError(`hv.guest: expected a guest name or UUID, got ${JSON.stringify(nameOrUuid)}`, { hint: 'list them with hv.guests()' });
    }
    let domain: Domain;
    try {
      domain = await this.connection.lookupDomain(nameOrUuid);
    } catch (err) {
      if (isNoDomainError(err)) throw new GuestNotFoundError({ nameOrUuid, uri: this.uri, cause: err });
      throw err;
    }
    return this.adopt(domain);
  }

  /** Defines a persistent guest (not started), optionally with a second QMP monitor. */
  async defineGuest(xml: string, options: DefineGuestOptions = {}): Promise<Guest> {
    this.assertOpen();
    const prepared = await this.prepareXml(xml, options);
    return this.adopt(await this.connection.defineXML(prepared));
  }

  /** Creates and starts a transient guest (gone once it stops), optionally with a second QMP monitor. */
  async createGuest(xml: string, options: DefineGuestOptions & { paused?: boolean } = {}): Promise<Guest> {
    this.assertOpen();
    const prepared = await this.prepareXml(xml, options);
    return this.adopt(await this.connection.createXML(prepared, options.paused ? { paused: true } : {}));
  }

  /**
   * The 2010 sketch's `qmp_context_new_by_name/_by_uuid/_by_fd/_by_iops` in one call: a guest by
   * name or UUID (through libvirt, with the ownership policy), or a plain QMP endpoint ({ path },
   * { fd }, { stream }, { host, port }) that libvirt does not manage.
   */
  async openQmp(target: { name: string } | { uuid: string }, options?: GuestQmpOptions): Promise<GuestQmpClient>;
  async openQmp(target: StreamTarget, options?: QemuConnectOptions): Promise<QemuClient>;
  async openQmp(target: OpenQmpTarget, options: GuestQmpOptions | QemuConnectOptions = {}): Promise<QemuClient> {
    if (target === null || typeof target !== 'object') {
      throw new InvalidArgumentError('openQmp: target must be { name }, { uuid }, { path }, { fd }, { stream } or { host, port }');
    }
    if ('name' in target) return (await this.guest(target.name)).qmp(options as GuestQmpOptions);
    if ('uuid' in target) return (await this.guest(target.uuid)).qmp(options as GuestQmpOptions);
    return QemuClient.connect(target, options as QemuConnectOptions);
  }

  /**
   * Closes every guest's QMP connections and watchers, then the libvirt connection, and removes
   * libqemu's own monitor directory when it is no longer needed (see `monitorDir`). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const g of this.guestCache.values()) await g.close().catch(() => undefined);
      this.guestCache.clear();
      // asks libvirt, so before the connection goes; not while libvirtd is away (close() must not wait for it)
      const removeDir = this.connection.isOpen && (await this.ownMonitorDirUnused());
      await this.connection.close();
      if (removeDir) await removeCreatedMonitorDir(this.monitorDir);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * @internal makes a monitor directory usable (creating and repairing libqemu's own); public because a
   * migration prepares the destination hypervisor's directory through it.
   */
  async prepareMonitorDir(dir: string): Promise<void> {
    if (!this.local) return;
    await ensureMonitorDir(dir, this.qemuUser, { fix: this.ownMonitorDir && dir === this.monitorDir });
  }

  /** Hands a guest's new taint marks to onTaint (default: one process warning per guest and mark). */
  private reportTaint(report: TaintReport): void {
    try {
      if (this.onTaint) this.onTaint(report);
      else {
        process.emitWarning(`libvirt marks guest '${report.guest}' as tainted: ${report.taints.map((t) => t.flag).join(', ')} (reported once)`, { code: 'LIBQEMU_TAINT' });
      }
    } catch {
      // a reporting hook must not break the caller
    }
  }

  /**
   * Whether libqemu's default monitor directory can go: created by libqemu in this process (here, or
   * by the migration for this URI), empty, and not named by any guest libvirt still has (a stopped
   * persistent guest's QEMU could not create its socket on the next start, e.g. through virsh). When
   * libvirt cannot answer, the directory stays.
   */
  private async ownMonitorDirUnused(): Promise<boolean> {
    if (!this.local || !this.ownMonitorDir || !createdInThisProcess(this.monitorDir)) return false;
    try {
      if ((await fs.readdir(this.monitorDir)).length > 0) return false;
      for (const d of await this.connection.listDomains({ active: true, inactive: true })) {
        const sockets = await readMonitorSockets(d, { inactive: true }).catch((err: unknown) => {
          if (isNoDomainError(err)) return []; // gone meanwhile
          throw err;
        });
        if (sockets.some((m) => dirname(m.path) === this.monitorDir)) return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  private assertOpen(): void {
    if (!this.isOpen) throw new InvalidArgumentError('this Hypervisor is closed', { hint: 'connect again with Hypervisor.connect()' });
  }

  private adopt(domain: Domain): Guest {
    const known = this.guestCache.get(domain.uuid);
    if (known && !known.isClosed) return known;
    const guest = new Guest(this.contextFor(domain), domain);
    this.guestCache.set(domain.uuid, guest);
    return guest;
  }

  /** What a Guest may ask of this hypervisor, bound to its domain. */
  private contextFor(domain: Domain): GuestContext<Guest> {
    const hv = this;
    return {
      get uri() {
        return hv.uri;
      },
      local: this.local,
      placement: this.placement,
      monitorDir: this.monitorDir,
      get isOpen() {
        return hv.isOpen;
      },
      prepareMonitorDir: (dir) => this.prepareMonitorDir(dir),
      reportTaint: (report) => this.reportTaint(report),
      domainEvents: (options) => quiet(this.connection.domainEvents({ ...options, domain })),
      qemuMonitorEvents: (options) => quiet(this.connection.qemuMonitorEvents({ ...options, domain })),
      passthroughTransport: (options) => new PassthroughTransport(libvirtPassthroughTarget(this.connection, domain), options),
      reserveLane: (lost) => this.connection.reserveLane(lost),
      agentTransport: () => new LibvirtAgentTransport({ connection: this.connection, domain, guestName: domain.name }),
      domainStats: async () => {
        const [record] = await this.connection.domainListGetStats([domain]);
        if (!record) throw new GuestNotFoundError({ nameOrUuid: domain.name, uri: this.uri });
        return record.stats;
      },
      openStream: () => this.connection.streamNew(virStreamFlags.VIR_STREAM_NONBLOCK),
      migrate: ({ destination, options, qmp }) => migrateGuest<Guest>({ domain, sourceUri: this.uri, destination, options, qmp }),
    };
  }

  private async prepareXml(xml: string, options: DefineGuestOptions): Promise<string> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    const q = options.qmpSocket;
    if (q === undefined || q === false) {
      DomainXml.parse(xml); // fail early, with a clear error, on XML we could not read either
      return xml;
    }
    if (q !== true && typeof q !== 'string') {
      throw new InvalidArgumentError(`qmpSocket must be true or an absolute socket path, got ${JSON.stringify(q)}`, { hint: 'qmpSocket: true lets libqemu choose a private path' });
    }
    if (!this.local) {
      throw new InvalidArgumentError(`cannot add a second monitor on ${this.uri}: ${remoteReason(this.placement)}`, { hint: "define the guest without qmpSocket and use guest.qmp({ via: 'passthrough' })" });
    }
    const doc = DomainXml.parse(xml);
    const uuid = doc.ensureUuid();
    const path = q === true ? `${this.monitorDir}/${uuid}.qmp` : q;
    doc.addMonitorSocket(path); // validates the path before we touch the filesystem
    await this.prepareMonitorDir(dirname(path));
    return doc.toString();
  }
}

/**
 * A libvirt event stream read by the facade itself (a guest's watcher, the sources of guest.events()):
 * its reads do not keep the process alive, since waiting there is libqemu's doing, not the user's. A
 * user awaiting guest.events() holds the process through that stream instead.
 */
function quiet<T>(stream: EventStream<T>): GuestEventSource<T> {
  const source: GuestEventSource<T> = {
    ready: stream.ready,
    next: () => stream.queue.next(),
    return: () => stream.return(),
    [Symbol.asyncIterator]: () => source,
  };
  return source;
}

/**
 * What hv.guests() says of each domain, sorted by name: its state, its monitor socket and the routes
 * it offers (a listing does not dial any socket). A transient guest that vanished meanwhile is left out.
 */
export async function summarizeGuests(domains: ReadonlyArray<Pick<Domain, 'name' | 'uuid' | 'state' | 'xml'>>, options: { local: boolean }): Promise<GuestSummary[]> {
  const out: GuestSummary[] = [];
  for (const d of domains) {
    try {
      const { state } = await d.state();
      const running = isRunningState(state);
      const monitorSocket = (await readMonitorSockets(d, { inactive: !running }))[0]?.path;
      const routes = await qmpRoutes({ running, monitorSocket, local: options.local });
      out.push({ name: d.name, uuid: d.uuid, state, routes, monitorSocket });
    } catch (err) {
      if (!isNoDomainError(err)) throw err;
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
