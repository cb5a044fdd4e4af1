import { closeSync } from 'node:fs';
import { InvalidArgumentError } from '../common/errors.js';
import { uriPassesFds } from '../domain/uri.js';
import type { Connection } from '../libvirt/connection.js';
import type { Domain } from '../libvirt/domain.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { ConnectionGap, QemuMonitorEvent } from '../libvirt/events.js';
import { duplicateFd } from '../../native/socket.js';
import { FdPassingError, QmpClosedError } from '../qmp/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../qmp/framing.js';
import type { QmpMessage, QmpTransport, SendOptions, TransportCapabilities, TransportHandlers } from '../qmp/transport.js';
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

/** A queued command and our duplicates of the fds that go with it (closed once libvirt has sent them). */
interface Queued {
  msg: QmpMessage;
  fds: number[];
}

/** One ordering key's commands: waiting, and whether one of them is with libvirt now. */
interface KeyQueue {
  items: Queued[];
  running: boolean;
}

/** What libvirt's monitor returned (its parsed JSON, `id` being libvirt's own), or why no command got there. */
export type MonitorReply = { return?: unknown; error?: { class: string; desc: string }; id?: unknown };

/** A subscription to a domain's QEMU events as libvirt relays them (a libvirt EventStream is one). */
export interface PassthroughEventSource extends AsyncIterable<QemuMonitorEvent | ConnectionGap> {
  /** Resolves once libvirt has registered the callback. */
  readonly ready: Promise<void>;
  return(): Promise<unknown>;
}

/**
 * What the transport needs of libvirt: one domain's passthrough calls and its QEMU events. A libvirt
 * Connection and Domain give it (libvirtPassthroughTarget); a thread that makes its own blocking calls
 * gives it too (the passthrough proxy's thread).
 */
export interface PassthroughTarget {
  /** The libvirt URI: fds pass only over a local unix socket. */
  readonly uri: string;
  /** The domain's name, for messages. */
  readonly name: string;
  /**
   * virDomainQemuMonitorCommand with a QMP command (no id): libvirt's reply text, unparsed (a relay
   * takes it as it is: see TransportHandlers.takeReply; the transport parses it for anyone else).
   */
  qemuMonitorCommandText(command: QmpMessage): Promise<string>;
  /** virDomainQemuMonitorCommandWithFiles with a QMP command as text. */
  qemuMonitorCommandWithFiles(command: string, fds: number[]): Promise<{ result: string; outfiles: number[] }>;
  /** The domain's QEMU events, filtered by libvirt (`event`, `regex`). */
  qemuMonitorEvents(filter: { event?: string; regex?: boolean; bufferSize: number }): PassthroughEventSource;
}

/**
 * A libvirt Connection and one of its Domains as a passthrough target. Transports (and other streams)
 * with the same event filter share one libvirt registration: the Connection fans it out.
 */
export function libvirtPassthroughTarget(connection: Connection, domain: Domain): PassthroughTarget {
  return {
    uri: connection.uri,
    name: domain.name,
    qemuMonitorCommandText: (command) => domain.qemuMonitorCommandText(command),
    qemuMonitorCommandWithFiles: (command, fds) => domain.qemuMonitorCommandWithFiles(command, fds, 0),
    qemuMonitorEvents: (filter) => connection.qemuMonitorEvents({ domain, ...filter }),
  };
}

/** libvirt's qemuDomainQemuMonitorCommandWithFiles takes at most one fd per command. */
const LIBVIRT_MAX_FDS = 1;

/** What the route can do over `uri`: fds only where libvirt itself can pass them. */
export function passthroughCapabilities(uri: unknown): TransportCapabilities {
  // maxMessageBytes: libvirt's QEMU_MONITOR_MAX_RESPONSE
  const base = { pipelining: false, orderedByKey: true, oob: false, maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, preNegotiated: true };
  if (typeof uri === 'string' && uriPassesFds(uri)) return { ...base, fdPassing: true, maxFds: LIBVIRT_MAX_FDS };
  return {
    ...base,
    fdPassing: false,
    fdPassingUnavailable: {
      reason: `libvirt passes file descriptors only to a daemon reached over a local unix socket, and this connection is ${describeUri(uri)} (sending them anyway makes libvirt drop the connection)`,
      hint: "use the guest's second monitor on the daemon's host (guest.qmp({ via: 'monitor' })), or connect with a unix-socket URI (qemu:///system, qemu:///session, qemu+unix:///…?socket=…)",
    },
  };
}

/**
 * QMP through libvirt's own monitor (virDomainQemuMonitorCommand): works on any running domain, local
 * or remote, including ones defined by other tools, with no extra socket. libvirt owns the ids (the
 * client's id is stripped and put back on the reply); the commands of one caller (one ordering key) run
 * one at a time, in order, different callers' side by side. Capabilities are already negotiated by
 * libvirt, so the greeting is synthesised from `query-version`. Events come from
 * virConnectDomainQemuMonitorEventRegister. A command libvirt fails is failed with the real error:
 * GuestNotRunningError when the domain has no QEMU, else the LibvirtError itself (code kept).
 * A command with fds goes through virDomainQemuMonitorCommandWithFiles (one fd per command, and only
 * on a local unix-socket connection: `capabilities.fdPassing` says whether).
 */
export class PassthroughTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities;
  readonly description: string;
  private handlers: TransportHandlers | undefined;
  private state: 'idle' | 'open' | 'closed' = 'idle';
  /** Commands per ordering key (commands without one share the transport's own order), one at a time per key. */
  private readonly queues = new Map<object, KeyQueue>();
  private events: PassthroughEventSource | undefined;

  constructor(
    private readonly target: PassthroughTarget,
    private readonly options: PassthroughTransportOptions = {},
  ) {
    this.description = `passthrough:${target.name}`;
    this.capabilities = passthroughCapabilities(target.uri);
    libvirtEventFilter(options.events); // validate now
  }

  async open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'idle') throw new InvalidArgumentError(`${this.description}: transport already opened`, { hint: 'create a new transport per client' });
    signal?.throwIfAborted();
    this.handlers = handlers;
    // Subscribe before anything else so no event after open is missed; libvirt filters by name.
    const filter = libvirtEventFilter(this.options.events);
    const bufferSize = this.options.eventBufferSize ?? 1000;
    this.events = this.target.qemuMonitorEvents({ ...filter, bufferSize });
    let version: QmpMessage;
    try {
      await this.events.ready;
      const reply = JSON.parse(await this.target.qemuMonitorCommandText({ execute: 'query-version' })) as MonitorReply;
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

  send(msg: QmpMessage, options?: SendOptions): void {
    if (this.state !== 'open') throw new QmpClosedError(`${this.description} is closed`);
    const fds = options?.fds && options.fds.length > 0 ? this.duplicate(options.fds) : [];
    const key = options?.orderingKey ?? this;
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = { items: [], running: false }));
    queue.items.push({ msg, fds });
    if (!queue.running) this.next(key, queue);
  }

  /** Drops every queued command (their fds closed). */
  private dropQueued(): void {
    for (const queue of this.queues.values()) for (const q of queue.items.splice(0)) closeFds(q.fds);
    this.queues.clear();
  }

  async close(reason?: Error): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.dropQueued();
    const events = this.events;
    this.events = undefined;
    await events?.return();
    if (wasOpen) this.handlers?.closed(reason);
  }

  /**
   * Sends one ordering key's next command, and the one after it once libvirt has answered: one at a
   * time, in order. Different keys (a proxy's clients) run side by side, each a libvirt call of its own
   * on a free lane; libvirt still runs one command at a time on the domain's monitor, but the round
   * trips to the daemon overlap. Callbacks rather than an async loop: the reply reaches the client in
   * the same turn as libvirt's answer.
   */
  private next(key: object, queue: KeyQueue): void {
    const item = this.state === 'open' ? queue.items.shift() : undefined;
    if (item === undefined) {
      queue.running = false;
      if (queue.items.length === 0 && this.queues.get(key) === queue) this.queues.delete(key);
      return;
    }
    queue.running = true;
    const { msg, fds } = item;
    const { id, ...command } = msg;
    const done = (outcome: MonitorReply | Error | undefined): void => {
      closeFds(fds); // libvirt has sent its own copies to QEMU (or failed)
      try {
        // libvirt's own id (libvirt-N) is replaced by the client's; undefined: the client took the reply line.
        if (outcome !== undefined && this.state === 'open' && typeof id === 'string') {
          if (outcome instanceof Error) this.handlers?.failed(id, outcome);
          else this.handlers?.message(withId(outcome, id));
        }
      } finally {
        this.next(key, queue);
      }
    };
    let reply: Promise<MonitorReply | undefined>;
    try {
      if ('exec-oob' in command) {
        throw new InvalidArgumentError('out-of-band execution is not available through libvirt passthrough', { hint: "use the guest's second monitor (guest.qmp({ via: 'monitor', oob: true }))" });
      }
      reply = fds.length > 0 ? this.runWithFiles(command, fds) : this.target.qemuMonitorCommandText(command).then((text) => this.offerReply(text, id));
    } catch (err) {
      // whatever fails before libvirt has the command settles it too: the key's queue never stalls
      reply = Promise.reject(err);
    }
    reply.then(done, (err: unknown) => done(this.failure(err, fds)));
  }

  /**
   * libvirt's reply text to a relay as a reply line in QEMU's layout with the client's id (undefined:
   * taken, nothing more to deliver), else parsed for delivery.
   */
  private offerReply(text: string, id: unknown): MonitorReply | undefined {
    const takeReply = this.handlers?.takeReply;
    if (takeReply && typeof id === 'string' && this.state === 'open') {
      const line = asClientReplyLine(text, id);
      if (line !== undefined && takeReply(line)) return undefined;
    }
    return JSON.parse(text) as MonitorReply;
  }

  /** The error a command libvirt failed is answered with. */
  private failure(err: unknown, fds: readonly number[]): Error {
    if (fds.length > 0 && err instanceof LibvirtError && /file descriptors/i.test(err.message)) {
      return new FdPassingError(`${this.description}: libvirt could not pass the file descriptor: ${err.message}`, { cause: err, hint: passthroughCapabilities(undefined).fdPassingUnavailable!.hint });
    }
    if (err instanceof LibvirtError && (err.codeName === 'VIR_ERR_OPERATION_INVALID' || err.codeName === 'VIR_ERR_NO_DOMAIN')) {
      return new GuestNotRunningError({ guest: this.target.name, state: 'not running', cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  /** virDomainQemuMonitorCommandWithFiles: QEMU gets `fds` with the command, as with SCM_RIGHTS on its socket. */
  private async runWithFiles(command: QmpMessage, fds: readonly number[]): Promise<MonitorReply> {
    const { result, outfiles } = await this.target.qemuMonitorCommandWithFiles(JSON.stringify(command), [...fds]);
    closeFds(outfiles); // QMP replies carry no fds; never leak any libvirt hands back
    return JSON.parse(result) as MonitorReply;
  }

  /**
   * Checks `fds` against the route and takes duplicates: the command may wait behind another one, and
   * the caller is free to close its own copies once execute() settles (a timeout, an abort).
   */
  private duplicate(fds: readonly number[]): number[] {
    const caps = this.capabilities;
    if (!caps.fdPassing) {
      throw new FdPassingError(`${this.description} cannot pass file descriptors: ${caps.fdPassingUnavailable!.reason}`, { hint: caps.fdPassingUnavailable!.hint });
    }
    if (fds.length > (caps.maxFds ?? LIBVIRT_MAX_FDS)) {
      throw new FdPassingError(`${this.description}: libvirt passes at most ${caps.maxFds} file descriptor per command, got ${fds.length}`, { hint: 'send one add-fd per fd, all with the same fdset-id' });
    }
    const copies: number[] = [];
    for (const fd of fds) {
      const d = duplicateFd(fd);
      if ('errno' in d) {
        closeFds(copies);
        throw new FdPassingError(`${this.description}: file descriptor ${fd} is not open (errno ${d.errno})`, { hint: 'pass fds you opened and keep them open until execute() settles' });
      }
      copies.push(d.fd);
    }
    return copies;
  }

  private async pumpEvents(events: AsyncIterable<QemuMonitorEvent | ConnectionGap>): Promise<void> {
    let reason: Error;
    try {
      for await (const ev of events) {
        if (this.state !== 'open') return;
        // libvirtd restarted: the registration is already back on the new connection; QMP has no word for a gap.
        if ('kind' in ev) continue;
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
      this.dropQueued();
      this.handlers?.closed(reason);
    }
  }
}

/**
 * libvirt's reply as the client's: QEMU's `return` or `error` with the client's id. libvirt's parsed reply
 * is a fresh object only this transport holds, so a success is reused rather than copied.
 */
function withId(reply: MonitorReply, id: string): QmpMessage {
  if (reply.error) return { error: reply.error, id };
  if (!('return' in reply)) return { return: undefined, id };
  reply.id = id;
  return reply as QmpMessage;
}

const LIBVIRT_RETURN_HEAD = '{"return":';
const LIBVIRT_ID = ',"id":"libvirt-';

/**
 * libvirt's reply text, `{"return":VALUE,"id":"libvirt-N"}` (its own compact serialisation of QEMU's
 * reply), as QEMU's layout with the client's id: `{"return": VALUE, "id": "ID"}`. Undefined for anything
 * else (errors, another layout), which is then parsed.
 */
function asClientReplyLine(text: string, id: string): string | undefined {
  if (!text.startsWith(LIBVIRT_RETURN_HEAD) || !text.endsWith('"}')) return undefined;
  const idAt = text.lastIndexOf(LIBVIRT_ID);
  if (idAt <= LIBVIRT_RETURN_HEAD.length || !/^\d+$/.test(text.slice(idAt + LIBVIRT_ID.length, text.length - 2))) return undefined;
  return `{"return": ${text.slice(LIBVIRT_RETURN_HEAD.length, idAt)}, "id": ${JSON.stringify(id)}}`;
}

/** Scheme and host only: query parameters of a URI may name key files and such, which errors need not show. */
function describeUri(uri: unknown): string {
  if (typeof uri !== 'string') return 'not one';
  try {
    const u = new URL(uri);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return 'not a URI libqemu can read';
  }
}

function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
