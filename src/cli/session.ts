/**
 * What one `libqemu` invocation talks to, from the global options: a raw QMP socket (--socket, no
 * libvirt needed) or a libvirt guest (--domain, through the hybrid facade, so the ownership policy
 * applies). Everything opened is closed by close(), whatever happened.
 */
import type { Command } from 'commander';
import type { Guest, GuestQmpClient, Hypervisor, QmpVia } from '../hybrid/index.js';
import { QemuClient } from '../schema/client.js';
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
}

export interface SessionQmpOptions {
  /** Check commands against the schema before sending (default true). */
  validate?: boolean;
  /** Per-command timeout in ms (default: --timeout). */
  timeoutMs?: number;
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
    this.out = new Output(io, options.json);
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
    const { socket, domain } = this.options;
    if (socket && domain) throw new UsageError('give either --socket or --domain, not both', { hint: '--socket talks to a bare QMP socket, --domain to a libvirt guest' });
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    if (socket) {
      const fdPassing = options.fdPassing ? (await import('../../native/socket.js')).unixFdPassing : undefined;
      const client = await QemuClient.connect(
        { path: socket },
        { timeoutMs, connectTimeoutMs: this.timeoutMs, handshakeTimeoutMs: this.timeoutMs, validate: options.validate !== false, ...(fdPassing ? { fdPassing } : {}) },
      );
      this.closers.push(() => client.close());
      return client;
    }
    if (!domain) {
      throw new UsageError('no QEMU to talk to', { hint: 'name one with --socket PATH (a QMP socket) or --domain NAME (a libvirt guest; --uri picks the daemon)' });
    }
    const guest = await this.guest(domain);
    const client: GuestQmpClient = await guest.qmp({
      via: this.options.via,
      timeoutMs,
      validate: options.validate !== false,
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
      onTaint: (r) => this.out.note(`note: libvirt marks guest '${r.guest}' as tainted: ${r.taints.map((t) => t.flag).join(', ')}`),
    });
    return this.hv;
  }

  async guest(name = this.options.domain): Promise<Guest> {
    if (!name) throw new UsageError('which guest?', { hint: 'name it with --domain NAME (or as the argument)' });
    return (await this.hypervisor()).guest(name);
  }

  async close(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) await close().catch(() => undefined);
    const hv = this.hv;
    this.hv = undefined;
    await hv?.close().catch(() => undefined);
  }
}
