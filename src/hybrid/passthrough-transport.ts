import { InvalidArgumentError } from '../common/errors.js';
import type { Connection } from '../libvirt/connection.js';
import type { Domain } from '../libvirt/domain.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { EventStream, QemuMonitorEvent } from '../libvirt/events.js';
import { QmpClosedError } from '../qmp/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../qmp/framing.js';
import type { QmpMessage, QmpTransport, TransportCapabilities, TransportHandlers } from '../qmp/transport.js';
import { GuestNotRunningError } from './errors.js';

export interface PassthroughTransportOptions {
  /**
   * Only these QEMU events, filtered by libvirt itself (virConnectDomainQemuMonitorEventRegister's
   * name/regex filter) rather than after delivery. Default: every event of the domain.
   */
  events?: readonly string[];
  /** libvirt-side event buffer (default 1000). */
  eventBufferSize?: number;
}

/** libvirt's event filter for a list of names: one exact name, or an anchored alternation (regex flag). */
export function libvirtEventFilter(names: readonly string[] | undefined): { event?: string; regex?: boolean } {
  if (names === undefined || names.length === 0) return {};
  for (const n of names) {
    if (typeof n !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(n)) {
      throw new InvalidArgumentError(`event name ${JSON.stringify(n)} is not a QEMU event name`, { hint: "QEMU event names look like 'STOP' or 'BLOCK_JOB_COMPLETED'" });
    }
  }
  const unique = [...new Set(names)];
  if (unique.length === 1) return { event: unique[0]! };
  return { event: `^(${unique.map((n) => n.replaceAll('.', '\\.')).join('|')})$`, regex: true };
}

/**
 * QMP through libvirt's own monitor (virDomainQemuMonitorCommand): works on any running domain, local
 * or remote, including ones defined by other tools, with no extra socket. libvirt owns the ids (the
 * client's id is stripped and put back on the reply) and runs one command at a time; capabilities are
 * already negotiated by libvirt, so the greeting is synthesised from `query-version`. Events come from
 * virConnectDomainQemuMonitorEventRegister. A command libvirt fails is failed with the real error:
 * GuestNotRunningError when the domain has no QEMU, else the LibvirtError itself (code kept).
 */
export class PassthroughTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities = {
    pipelining: false,
    oob: false,
    fdPassing: false,
    maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, // libvirt's QEMU_MONITOR_MAX_RESPONSE
    preNegotiated: true,
  };
  readonly description: string;
  private handlers: TransportHandlers | undefined;
  private state: 'idle' | 'open' | 'closed' = 'idle';
  private readonly queue: QmpMessage[] = [];
  private busy = false;
  private events: EventStream<QemuMonitorEvent> | undefined;

  /**
   * `connection`: the domain's own. Transports (and other streams) with the same event filter share one
   * libvirt registration there: the Connection fans it out.
   */
  constructor(
    private readonly connection: Connection,
    private readonly domain: Domain,
    private readonly options: PassthroughTransportOptions = {},
  ) {
    this.description = `passthrough:${domain.name}`;
    libvirtEventFilter(options.events); // validate now
  }

  async open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'idle') throw new InvalidArgumentError(`${this.description}: transport already opened`, { hint: 'create a new transport per client' });
    signal?.throwIfAborted();
    this.handlers = handlers;
    // Subscribe before anything else so no event after open is missed; libvirt filters by name.
    const filter = libvirtEventFilter(this.options.events);
    const bufferSize = this.options.eventBufferSize ?? 1000;
    this.events = this.connection.qemuMonitorEvents({ domain: this.domain, ...filter, bufferSize });
    let version: QmpMessage;
    try {
      await this.events.ready;
      const reply = await this.domain.qemuMonitorCommand({ execute: 'query-version' });
      if (reply.error) throw new QmpClosedError(`query-version through libvirt failed: ${reply.error.class}: ${reply.error.desc}`);
      version = reply.return as QmpMessage;
    } catch (err) {
      await this.events.return();
      this.events = undefined;
      throw err;
    }
    if (signal?.aborted) {
      await this.events.return();
      throw signal.reason;
    }
    this.state = 'open';
    void this.pumpEvents(this.events);
    // libvirt negotiated long ago and offers no oob through passthrough.
    handlers.message({ QMP: { version, capabilities: [] } });
  }

  send(msg: QmpMessage): void {
    if (this.state !== 'open') throw new QmpClosedError(`${this.description} is closed`);
    this.queue.push(msg);
    if (!this.busy) void this.pump();
  }

  async close(reason?: Error): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.queue.length = 0;
    const events = this.events;
    this.events = undefined;
    await events?.return();
    if (wasOpen) this.handlers?.closed(reason);
  }

  /** Sends queued commands one at a time, as libvirt would serialise them anyway. */
  private async pump(): Promise<void> {
    this.busy = true;
    try {
      while (this.state === 'open' && this.queue.length > 0) {
        const { id, ...command } = this.queue.shift()!;
        const outcome = await this.run(command);
        if (this.state !== 'open' || typeof id !== 'string') continue;
        // libvirt's own id (libvirt-N) is replaced by the client's.
        if (outcome instanceof Error) this.handlers?.failed(id, outcome);
        else this.handlers?.message({ ...outcome, id });
      }
    } finally {
      this.busy = false;
    }
  }

  /** One command through libvirt: QEMU's reply (return or error), or the error that kept it from QEMU. */
  private async run(command: QmpMessage): Promise<QmpMessage | Error> {
    if ('exec-oob' in command) {
      return new InvalidArgumentError('out-of-band execution is not available through libvirt passthrough', { hint: "use the guest's second monitor (guest.qmp({ via: 'monitor', oob: true }))" });
    }
    try {
      const reply = await this.domain.qemuMonitorCommand(command);
      return reply.error ? { error: reply.error } : { return: reply.return };
    } catch (err) {
      if (err instanceof LibvirtError && (err.codeName === 'VIR_ERR_OPERATION_INVALID' || err.codeName === 'VIR_ERR_NO_DOMAIN')) {
        return new GuestNotRunningError({ guest: this.domain.name, state: 'not running', cause: err });
      }
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  private async pumpEvents(events: AsyncIterable<QemuMonitorEvent>): Promise<void> {
    let reason: Error;
    try {
      for await (const ev of events) {
        if (this.state !== 'open') return;
        const m: QmpMessage = { event: ev.event, timestamp: ev.timestamp };
        if (ev.data !== undefined) m.data = ev.data;
        this.handlers?.message(m);
      }
      reason = new Error('the libvirt connection was closed');
    } catch (err) {
      reason = err instanceof Error ? err : new Error(String(err));
    }
    // libvirt's connection is gone (or the subscriber overflowed): so is this QMP connection.
    if (this.state === 'open') {
      this.state = 'closed';
      this.queue.length = 0;
      this.handlers?.closed(reason);
    }
  }
}
