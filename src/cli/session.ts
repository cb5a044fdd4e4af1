/**
 * What one `libqemu` invocation talks to, from the global options: a raw QMP socket (--socket, no
 * libvirt needed) or a libvirt guest (--domain, through the hybrid facade, so the ownership policy
 * applies). Everything opened is closed by close(), whatever happened.
 */
import type { Command } from 'commander';
import type { Guest, GuestQmpClient, Hypervisor, QmpVia } from '../hybrid/index.js';
import type { QmpConnectOptions } from '../qmp/index.js';
import type { QemuClient } from '../schema/client.js';
import { UsageError } from './exit-codes.js';
import { Output, type CliIO } from './output.js';

export interface GlobalOptions {
  uri?: string;
  domain?: string;
  socket?: string;
  via: QmpVia;
  json: boolean;
  /** Seconds. */
  timeout: number;
  allow?: string[];
  /** No notices on stderr. */
  quiet: boolean;
}

/** Guests whose taint was reported by this process: the notice is printed once per guest. */
const taintReported = new Set<string>();

/** `HOST:PORT` or `[IPv6]:PORT` means QMP over TCP; anything else is a unix socket path. */
export function parseSocketTarget(value: string): { path: string } | { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^/:\s]+)):(\d{1,5})$/.exec(value);
  if (!m) return { path: value };
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new UsageError(`--socket ${value}: port must be 1-65535`, { hint: 'e.g. -s 127.0.0.1:4444 or -s /run/qmp.sock' });
  return { host: (m[1] ?? m[2])!, port };
}

export interface SessionQmpOptions {
  /** Check commands against the schema before sending (default true). */
  validate?: boolean;
  /** Per-command timeout in ms (default: --timeout). */
  timeoutMs?: number;
  /** The guest, when given as an argument rather than with --domain. */
  guest?: string;
  /** Sees every QMP message sent and received (secrets redacted), for -v and -l. */
  onTraffic?: QmpConnectOptions['onTraffic'];
  /** Pass file descriptors with commands (a --socket connection only). */
  fdPassing?: boolean;
}

export class Session {
  readonly out: Output;
  private hv: Hypervisor | undefined;
  private readonly closers: (() => Promise<unknown>)[] = [];

  constructor(
    readonly options: GlobalOptions,
    io: CliIO,
  ) {
    this.out = new Output(io, { json: options.json, quiet: options.quiet === true, context: { guest: options.domain, uri: options.uri } });
  }

  static from(cmd: Command, io: CliIO): Session {
    return new Session(cmd.optsWithGlobals<GlobalOptions>(), io);
  }

  get timeoutMs(): number {
    return Math.round(this.options.timeout * 1000);
  }

  /** Where QMP goes, for messages: `socket /x.sock` or `guest web1`. */
  describeTarget(): string {
    return this.options.socket ? `socket ${this.options.socket}` : `guest ${this.options.domain ?? '?'}`;
  }

  /** A QMP client on --socket, or on --domain through the facade (route --via, policy opt-ins --allow). */
  async qmp(options: SessionQmpOptions = {}): Promise<QemuClient> {
    const { socket } = this.options;
    const domain = options.guest ?? this.options.domain;
    if (socket && domain) throw new UsageError('give either --socket or --domain, not both', { hint: '--socket talks to a bare QMP socket, --domain to a libvirt guest' });
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    if (socket) {
      // loaded on use: `libqemu --version` and the libvirt-only verbs never pay for the schema layer
      const { QemuClient } = await import('../schema/client.js');
      const fdPassing = options.fdPassing ? (await import('../../native/socket.js')).unixFdPassing : undefined;
      const client = await QemuClient.connect(
        parseSocketTarget(socket),
        {
          timeoutMs,
          connectTimeoutMs: this.timeoutMs,
          handshakeTimeoutMs: this.timeoutMs,
          validate: options.validate !== false,
          ...(options.onTraffic ? { onTraffic: options.onTraffic } : {}),
          ...(fdPassing ? { fdPassing } : {}),
        },
      );
      this.closers.push(() => client.close());
      return client;
    }
    if (!domain) {
      throw new UsageError('no QEMU to talk to', { hint: 'name a libvirt guest with -d GUEST (-c URI picks the daemon), or a QMP socket with -s PATH or -s HOST:PORT' });
    }
    const guest = await this.guest(domain);
    const client: GuestQmpClient = await guest.qmp({
      via: this.options.via,
      timeoutMs,
      validate: options.validate !== false,
      ...(options.onTraffic ? { client: { onTraffic: options.onTraffic } } : {}),
      ...(this.options.allow?.length ? { allow: this.options.allow.includes('all') ? 'all' : this.options.allow } : {}),
    });
    this.closers.push(() => client.close());
    return client;
  }

  /** The libvirt connection (--uri, else LIBVIRT_DEFAULT_URI / libvirt's default). */
  async hypervisor(): Promise<Hypervisor> {
    if (this.hv) return this.hv;
    const { Hypervisor } = await import('../hybrid/index.js');
    this.hv = await Hypervisor.connect(this.options.uri, {
      callTimeoutMs: this.timeoutMs,
      onTaint: (r) => {
        if (taintReported.has(r.guest)) return;
        taintReported.add(r.guest);
        this.out.note(`libqemu: note: libvirt marks guest '${r.guest}' as tainted (${r.taints.map((t) => t.flag).join(', ')}); --quiet hides this`);
      },
    });
    return this.hv;
  }

  async guest(name = this.options.domain): Promise<Guest> {
    if (!name) throw new UsageError('which guest?', { hint: 'name it as the argument (libqemu start web1) or with -d GUEST' });
    return (await this.hypervisor()).guest(name);
  }

  async close(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) await close().catch(() => undefined);
    const hv = this.hv;
    this.hv = undefined;
    await hv?.close().catch(() => undefined);
  }
}
