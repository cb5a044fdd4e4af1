/**
 * A guest's second QMP monitor, in one place: where its socket is (read from the domain XML, cached per
 * QEMU run), the one shared connection to it (a MonitorHub, since the socket serves one client at a
 * time), and bringing that connection back after QEMU restarts, driven by libvirt's lifecycle events.
 */
import { dirname } from 'node:path';
import { probeSocket } from '../common/unix-socket.js';
import { DomainXml, type MonitorSocketSpec } from '../domain/domain-xml.js';
import { GuestNotRunningError, MonitorUnavailableError } from './errors.js';
import { SAME_HOST_UUIDS_ENV, remoteReason } from '../domain/host-identity.js';
import type { GuestContext, GuestDomain } from './guest-context.js';
import type { GuestQmpClient } from './guest-client.js';
import { isRunningState } from './guest-routes.js';
import { MonitorHub } from './monitor-hub.js';
import type { MonitorConnectionChange } from './monitor-transport.js';
import type { QmpTransport } from '../qmp/transport.js';
import { removeStaleSocket } from './stale-socket.js';

/** The second monitors in a domain's XML: the definition (`inactive`), else the current one (live when running). */
export async function readMonitorSockets(domain: Pick<GuestDomain, 'xml'>, options: { inactive?: boolean } = {}): Promise<MonitorSocketSpec[]> {
  return DomainXml.parse(await domain.xml(options.inactive ? { inactive: true } : {})).monitorSockets();
}

export interface GuestMonitorOptions {
  guest: string;
  domain: Pick<GuestDomain, 'xml' | 'state'>;
  context: Pick<GuestContext, 'local' | 'placement' | 'uri' | 'monitorDir' | 'prepareMonitorDir' | 'domainEvents'>;
  /** Told when the shared connection drops and when it is back. */
  onChange: (change: MonitorConnectionChange) => void;
}

export interface MonitorOpenOptions {
  handshakeTimeoutMs: number;
  oob?: boolean;
  signal?: AbortSignal;
  /** Whether this client, while open, keeps the process alive through the shared socket (default true). */
  holdsProcess?: boolean;
}

export class GuestMonitor {
  private hub: MonitorHub | undefined;
  private watcher: { stop(): Promise<void> } | undefined;
  /** The watcher is following libvirt's lifecycle events (so it sees every new QEMU run). */
  private following = false;
  /** The current XML's monitors, kept only while the watcher follows. */
  private current: Promise<MonitorSocketSpec[]> | undefined;
  private closed = false;

  constructor(private readonly options: GuestMonitorOptions) {}

  /** The second monitor's socket path (the definition's with `inactive`, else the current XML's). */
  async socketPath(options: { inactive?: boolean } = {}): Promise<string | undefined> {
    return (await this.sockets(options))[0]?.path;
  }

  /** The shared connection is up, or the socket accepts a connection right now. */
  async reachable(): Promise<boolean> {
    if (this.hub?.transport?.connected) return true;
    if (!this.options.context.local) return false;
    const path = await this.socketPath();
    return path !== undefined && (await probeSocket(path, 500)) === 'open';
  }

  /**
   * A new client on the shared monitor connection: `makeClient` builds it on its own channel, and it is
   * opened here. The connection (and the lifecycle watcher) is set up on first use; a socket a killed
   * QEMU left behind is removed, and reported as GuestNotRunningError when libvirt agrees.
   */
  async connect(makeClient: (transport: QmpTransport) => GuestQmpClient, options: MonitorOpenOptions): Promise<GuestQmpClient> {
    const { guest, context } = this.options;
    if (!context.local) {
      throw new MonitorUnavailableError({
        guest,
        message: `the hypervisor ${context.uri} is not on this host (${remoteReason(context.placement)}), so its monitor sockets are out of reach`,
        hint: `use guest.qmp({ via: 'passthrough' }) (or 'auto'); if that daemon does run on this machine, add its host UUID to ${SAME_HOST_UUIDS_ENV}`,
        reason: 'remote',
      });
    }
    // no hub (and no lifecycle watcher) for a guest that has no second monitor at all
    if (!this.hub) await this.requirePath();
    this.hub ??= new MonitorHub({
      guest,
      resolvePath: () => this.requirePath(),
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      ...(options.oob === undefined ? {} : { oob: options.oob }),
      onConnectionChange: (ch) => this.changed(ch),
    });
    this.ensureWatcher();
    // QEMU restarted and the lifecycle event has not brought the shared connection back yet: dial now
    if (this.hub.transport && !this.hub.transport.connected) await this.hub.transport.reconnect(options.signal).catch(() => undefined);
    const client = makeClient(this.hub.channel({ holdsProcess: options.holdsProcess !== false }));
    try {
      await client.open(options.signal === undefined ? {} : { signal: options.signal });
    } catch (err) {
      if (err instanceof MonitorUnavailableError && err.reason === 'stale') {
        await this.removeStaleSockets();
        const { state } = await this.options.domain.state();
        if (!isRunningState(state)) throw new GuestNotRunningError({ guest, state, cause: err });
      }
      throw err;
    }
    return client;
  }

  /** Before a start: libqemu's own directory is (re)created if the temp dir was cleaned, a killed QEMU's socket removed. */
  async prepareStart(): Promise<void> {
    const { context, guest } = this.options;
    if (!context.local) return;
    for (const m of await this.sockets({ inactive: true })) {
      // anyone else's directory is left as it is
      if (dirname(m.path) === context.monitorDir) await context.prepareMonitorDir(context.monitorDir);
      await removeStaleSocket(m.path, guest).catch(() => undefined);
    }
  }

  /** A new QEMU run: the socket is read again, and the shared connection follows. */
  newRun(): void {
    this.current = undefined;
  }

  /** Removes socket files that a killed QEMU left behind (nobody listens on them). */
  async removeStaleSockets(): Promise<void> {
    if (!this.options.context.local) return;
    for (const m of await this.sockets()) await removeStaleSocket(m.path, this.options.guest).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.hub?.close();
    this.hub = undefined;
    await this.watcher?.stop();
    this.watcher = undefined;
    this.current = undefined;
  }

  private sockets(options: { inactive?: boolean } = {}): Promise<MonitorSocketSpec[]> {
    if (options.inactive) return readMonitorSockets(this.options.domain, { inactive: true });
    if (this.current) return this.current;
    const read = readMonitorSockets(this.options.domain);
    if (this.following) {
      this.current = read;
      read.catch(() => this.current === read && (this.current = undefined));
    }
    return read;
  }

  private async requirePath(): Promise<string> {
    const path = (await this.sockets())[0]?.path;
    if (!path) {
      throw new MonitorUnavailableError({
        guest: this.options.guest,
        message: 'the guest has no second QMP monitor in its domain XML',
        hint: "define it with hv.defineGuest(xml, { qmpSocket: true }), or use guest.qmp({ via: 'passthrough' })",
        reason: 'no-monitor',
      });
    }
    return path;
  }

  private changed(ch: MonitorConnectionChange): void {
    if (ch.type === 'disconnected') {
      this.current = undefined;
      // QEMU may still be (or already again) running, e.g. if a lifecycle event was missed: try shortly.
      setTimeout(() => void this.reconnectIfRunning(3), 250).unref();
    }
    this.options.onChange(ch);
  }

  /** Dials the monitor again when libvirt says QEMU runs; a few tries, the socket may lag the event. */
  private async reconnectIfRunning(tries: number): Promise<void> {
    for (let i = 0; i < tries; i++) {
      const monitor = this.hub?.transport;
      if (this.closed || !monitor || monitor.connected) return;
      const running = await this.options.domain.state().then((s) => isRunningState(s.state), () => false);
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

  /** Follows libvirt's lifecycle events: each start or stop is a new QEMU run; after 'started' the monitor is dialled again. */
  private ensureWatcher(): void {
    if (this.watcher) return;
    const stream = this.options.context.domainEvents({ kinds: ['lifecycle'], bufferSize: 64, overflow: 'drop-oldest' });
    this.following = true;
    const loop = (async () => {
      try {
        for await (const ev of stream) {
          if (ev.kind !== 'lifecycle') continue;
          if (ev.event !== 'suspended' && ev.event !== 'resumed') this.current = undefined;
          if (ev.event === 'started' || ev.event === 'resumed') void this.reconnectIfRunning(10);
        }
      } catch {
        // the libvirt connection went away: nothing left to follow
      }
      this.following = false; // no longer told about new runs
      this.current = undefined;
    })();
    this.watcher = {
      stop: async () => {
        await stream.return();
        await loop;
      },
    };
  }
}
