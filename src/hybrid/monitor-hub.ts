import { QmpClosedError } from '../qmp/errors.js';
import { replyLineParts } from '../qmp/framing.js';
import type { QmpMessage, QmpTransport, SendOptions, TransportCapabilities, TransportHandlers } from '../qmp/transport.js';
import { MonitorTransport, type MonitorTransportOptions } from './monitor-transport.js';

/**
 * A second QMP monitor serves one client at a time, so the facade keeps one connection per guest and
 * shares it: every `guest.qmp()` client gets a channel on the hub. Commands go out with the hub's own
 * short ids and replies (or transport failures) come back with the client's id, so they reach only
 * their sender; events go to every channel, and the shared connection closes when the last channel does.
 *
 * The socket keeps the process alive while a channel that holds it is open (a user's client, as any
 * socket would) or a command is in flight. Channels that only listen (the monitor source of
 * `guest.events()`, which holds the process itself while its consumer awaits) do not, so a program
 * that stopped reading its events exits by itself.
 *
 * Why a full client per caller over a multiplexed transport, rather than thin views over one shared
 * client: each caller has its own policy (`allow`), default timeout, schema validation, logger and
 * traffic hook, its own runstate and its own close(); a view would have to carry all of that beside a
 * shared client's command table anyway. The id rewrite is one small object per command.
 */
export class MonitorHub {
  private monitor: MonitorTransport | undefined;
  private opening: Promise<QmpMessage> | undefined;
  private greeting: QmpMessage | undefined;
  private readonly channels = new Map<number, MonitorChannel>();
  private nextChannel = 1;
  /** Commands sent and not answered yet: hub id → the channel and the client's own id. */
  private readonly inFlight = new Map<string, { channel: number; id: string }>();
  private nextId = 1;
  /** Open channels that hold the process. */
  private holders = 0;
  /** What the connection was last told (holdProcess). */
  private holding = true;

  constructor(private readonly options: MonitorTransportOptions) {}

  /**
   * A new client's transport on the shared connection. `holdsProcess: false` for a channel that only
   * listens and does not want the socket to keep the process alive (default true).
   */
  channel(options: { holdsProcess?: boolean } = {}): MonitorChannel {
    return new MonitorChannel(this, this.nextChannel++, this.options, options.holdsProcess !== false);
  }

  /** The shared connection, when open. */
  get transport(): MonitorTransport | undefined {
    return this.monitor;
  }

  get channelCount(): number {
    return this.channels.size;
  }

  /** @internal */
  async attach(ch: MonitorChannel, signal?: AbortSignal): Promise<QmpMessage> {
    if (!this.monitor) {
      this.opening ??= this.dial(signal).finally(() => (this.opening = undefined));
    }
    const greeting = this.opening ? await this.opening : this.greeting!;
    this.channels.set(ch.id, ch);
    if (ch.holdsProcess) this.holders++;
    this.updateHold();
    return greeting;
  }

  /** @internal */
  send(ch: MonitorChannel, msg: QmpMessage, options?: SendOptions): void {
    const monitor = this.monitor;
    if (!monitor) throw new QmpClosedError(`${this.options.guest}: the shared monitor connection is closed`);
    if (typeof msg.id !== 'string') {
      monitor.send(msg, options);
      return;
    }
    // the hub's own short ids keep the channels' commands apart; replies get the client's id back
    const id = `h${this.nextId++}`;
    this.inFlight.set(id, { channel: ch.id, id: msg.id });
    if (this.inFlight.size === 1) this.updateHold();
    try {
      monitor.send({ ...msg, id }, options);
    } catch (err) {
      this.inFlight.delete(id);
      if (this.inFlight.size === 0) this.updateHold();
      throw err;
    }
  }

  /** @internal */
  async detach(ch: MonitorChannel): Promise<void> {
    if (this.channels.delete(ch.id) && ch.holdsProcess) this.holders--;
    this.updateHold();
    if (this.channels.size === 0 && this.monitor) {
      const m = this.monitor;
      this.monitor = undefined;
      this.greeting = undefined;
      this.inFlight.clear();
      await m.close();
    }
  }

  /** Closes the shared connection and every channel (guest or hypervisor closing). */
  async close(reason?: Error): Promise<void> {
    const m = this.monitor;
    this.monitor = undefined;
    this.greeting = undefined;
    await m?.close(reason); // its closed handler ends every channel
  }

  private async dial(signal?: AbortSignal): Promise<QmpMessage> {
    const monitor = new MonitorTransport(this.options);
    let greeting: QmpMessage | undefined;
    await monitor.open(
      {
        message: (m) => {
          if ('QMP' in m) {
            greeting = m;
            return;
          }
          this.route(m);
        },
        takeReply: (line) => this.takeReply(line),
        failed: (id, error) => {
          const origin = this.take(id);
          if (origin) origin.ch.handlers?.failed(origin.id, error);
        },
        protocolError: (e) => {
          for (const ch of this.channels.values()) ch.handlers?.protocolError(e);
        },
        closed: (reason) => {
          if (this.monitor === monitor) {
            this.monitor = undefined;
            this.greeting = undefined;
            this.inFlight.clear();
          }
          const all = [...this.channels.values()];
          this.channels.clear();
          this.holders = 0;
          for (const ch of all) ch.ended(reason);
        },
      },
      signal,
    );
    this.monitor = monitor;
    this.greeting = greeting;
    this.holding = true; // a new connection holds until told otherwise
    return greeting!;
  }

  /** Tells the connection whether to keep the process alive: while a holding channel is open or a reply is awaited. */
  private updateHold(): void {
    const hold = this.holders > 0 || this.inFlight.size > 0;
    if (hold === this.holding || !this.monitor) return;
    this.holding = hold;
    this.monitor.holdProcess(hold);
  }

  private route(m: QmpMessage): void {
    if (typeof m.id === 'string') {
      const origin = this.take(m.id);
      if (origin) origin.ch.handlers?.message({ ...m, id: origin.id });
      return;
    }
    for (const ch of this.channels.values()) ch.handlers?.message(m);
  }

  /**
   * A reply line offered unparsed: with the hub's id replaced by the client's, to the client that sent the
   * command (a relay's command takes it as text; anything else is parsed and routed as usual).
   */
  private takeReply(line: string): boolean {
    const parts = replyLineParts(line);
    const origin = parts && this.inFlight.get(parts.id);
    const take = origin && this.channels.get(origin.channel)?.handlers?.takeReply;
    if (!take || !take(`${line.slice(0, parts!.idAt)}, "id": ${JSON.stringify(origin.id)}}`)) return false;
    this.take(parts!.id);
    return true;
  }

  /** The channel and client id a hub id was sent for; undefined when not ours, answered, or its channel has gone. */
  private take(hubId: string): { ch: MonitorChannel; id: string } | undefined {
    const origin = this.inFlight.get(hubId);
    if (!origin) return undefined;
    this.inFlight.delete(hubId);
    if (this.inFlight.size === 0) this.updateHold();
    const ch = this.channels.get(origin.channel);
    return ch ? { ch, id: origin.id } : undefined;
  }
}

/** One client's view of the shared monitor. */
export class MonitorChannel implements QmpTransport {
  readonly capabilities: TransportCapabilities;
  readonly description: string;
  /** @internal */
  handlers: TransportHandlers | undefined;
  private state: 'idle' | 'open' | 'closed' = 'idle';

  constructor(
    private readonly hub: MonitorHub,
    readonly id: number,
    options: MonitorTransportOptions,
    /** Whether this channel, while open, keeps the process alive. */
    readonly holdsProcess = true,
  ) {
    this.capabilities = {
      pipelining: true,
      oob: options.oob === true,
      fdPassing: true,
      maxMessageBytes: options.maxMessageBytes ?? 10 * 1024 * 1024,
      preNegotiated: true,
    };
    this.description = `monitor:${options.guest}`;
  }

  async open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'idle') throw new QmpClosedError(`${this.description}: channel already opened`);
    this.handlers = handlers;
    const greeting = await this.hub.attach(this, signal);
    this.state = 'open';
    handlers.message(greeting);
  }

  send(msg: QmpMessage, options?: SendOptions): void {
    if (this.state !== 'open') throw new QmpClosedError(`${this.description} is closed`);
    this.hub.send(this, msg, options);
  }

  async close(reason?: Error): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    await this.hub.detach(this);
    if (wasOpen) this.handlers?.closed(reason);
  }

  /** @internal the shared connection is gone for good. */
  ended(reason: Error | undefined): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.handlers?.closed(reason);
  }
}
