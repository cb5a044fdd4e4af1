/**
 * `guest.events()`: libvirt's domain events, QEMU's events (through the second monitor, else relayed by
 * libvirt) and libqemu's own notices merged into one bounded stream per caller.
 */
import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { QemuEvents } from '../generated/index.js';
import type { ConnectionGap, DomainEventKind, LifecycleEventName } from '../libvirt/events.js';
import type { EventName } from '../qmp/command-map.js';
import { GuestNotRunningError, MonitorUnavailableError } from './errors.js';
import type { GuestContext, GuestEventSource } from './guest-context.js';
import type { GuestQmpClient, QmpRoute } from './guest-client.js';
import { checkVia, type QmpVia } from './guest-routes.js';
import type { MonitorConnectionChange } from './monitor-transport.js';
import { libvirtEventFilter } from './passthrough-transport.js';
import type { Taint } from './taint.js';

interface EventBase {
  guest: string;
  /** When libqemu received it. */
  at: Date;
}

/** A QMP event name QEMU's schema (the generated QemuEvents) knows. */
export type QemuEventName = EventName<QemuEvents>;

declare const uncheckedEventName: unique symbol;
/** An event name the generated schema does not know (a newer QEMU's), made with uncheckedEventNames(). */
export type UncheckedEventName = string & { readonly [uncheckedEventName]: true };

/**
 * The escape hatch for `guest.events({ qmp: [...] })` names the types do not know: the names are passed
 * on unchanged, and their events arrive untyped (`event: string`, `data` a plain object).
 */
export function uncheckedEventNames(names: readonly string[]): readonly UncheckedEventName[] {
  return names as readonly UncheckedEventName[];
}

/** A QMP event of `guest.events()`; with a known name N its `data` has the schema's type. */
export type GuestQmpEvent<N extends string = string> = N extends string
  ? EventBase & {
      source: 'qmp';
      kind: 'qmp';
      route: QmpRoute;
      event: N extends UncheckedEventName ? string : N;
      data: N extends keyof QemuEvents ? QemuEvents[N] : Record<string, unknown> | undefined;
      timestamp: { seconds: number; microseconds: number };
    }
  : never;

/**
 * One event of `guest.events()`: libvirt's, QEMU's (through QMP), or libqemu's own notices. `N` narrows
 * the QMP events when the stream was opened with `qmp: [names]`.
 */
export type GuestEvent<N extends string = string> =
  | (EventBase & { source: 'libvirt'; kind: 'lifecycle'; event: LifecycleEventName; detail: string })
  | (EventBase & { source: 'libvirt'; kind: 'reboot' })
  /** The guest agent connected to or disconnected from its channel. */
  | (EventBase & { source: 'libvirt'; kind: 'agent-lifecycle'; state: 'connected' | 'disconnected'; reason: 'unknown' | 'domain-started' | 'channel' })
  | GuestQmpEvent<N>
  /** The monitor connection dropped: QMP events until the matching 'qmp-reconnected' are lost. */
  | (EventBase & { source: 'libqemu'; kind: 'qmp-disconnected'; reason: string })
  | (EventBase & { source: 'libqemu'; kind: 'qmp-reconnected'; gapMs: number })
  | (EventBase & { source: 'libqemu'; kind: 'taint'; taints: Taint[] })
  /**
   * The libvirt connection was lost from `since` to `until` (libvirtd restarted) and is back: libvirt's
   * events (and QMP events on the passthrough route) of that interval are lost; re-read the guest's state.
   * One per stream and reconnection, even when two libvirt sources feed it.
   */
  | (EventBase & { source: 'libqemu'; kind: 'libvirt-gap'; since: Date; until: Date });

export type LibqemuNotice = Extract<GuestEvent, { source: 'libqemu' }>;

export interface GuestEventsOptions<N extends string = string> {
  /** libvirt domain events: true (default: lifecycle, reboot and agent-lifecycle), false, or the kinds wanted. */
  libvirt?: boolean | DomainEventKind[];
  /** QMP events: true (default: all), false, or the names wanted (handed down to libvirt on passthrough). */
  qmp?: boolean | readonly N[];
  /** Route for QMP events (default 'auto'). */
  via?: QmpVia;
  /** Queue capacity (default 1000). */
  bufferSize?: number;
  overflow?: OverflowPolicy;
  /** Ends the stream. */
  signal?: AbortSignal;
}

/** The stream `guest.events()` returns; `ready` resolves once every source is subscribed. */
export interface GuestEventStream<N extends string = string> extends AsyncIterableIterator<GuestEvent<N>> {
  readonly ready: Promise<void>;
  /** Which route delivers QMP events (known once ready). */
  readonly qmpRoute: QmpRoute | undefined;
  /** Stops the stream and unsubscribes everywhere. */
  return(): Promise<IteratorResult<GuestEvent<N>>>;
}

export interface GuestEventSources {
  guest: string;
  context: Pick<GuestContext, 'domainEvents' | 'qemuMonitorEvents'>;
  /** A QMP client on the second monitor (as guest.qmp({ via: 'monitor' }) opens it). */
  monitorClient: (options: { handshakeTimeoutMs: number }) => Promise<GuestQmpClient>;
}

/** The event streams of one guest, and the notices they all carry. */
export class GuestEvents {
  private readonly noticeListeners = new Set<(n: LibqemuNotice) => void>();
  private readonly streamEnders = new Set<(err?: unknown) => void>();

  constructor(private readonly sources: GuestEventSources) {}

  /** Hands a libqemu notice to every open stream. */
  notify(n: LibqemuNotice): void {
    for (const fn of [...this.noticeListeners]) fn(n);
  }

  /** The monitor connection dropped or came back: QMP events in between are lost. */
  monitorChanged(ch: MonitorConnectionChange): void {
    const base = { source: 'libqemu' as const, guest: this.sources.guest, at: ch.at };
    this.notify(ch.type === 'disconnected' ? { ...base, kind: 'qmp-disconnected', reason: ch.reason } : { ...base, kind: 'qmp-reconnected', gapMs: ch.gapMs });
  }

  /** libvirt marked the guest as tainted. */
  tainted(taints: Taint[]): void {
    this.notify({ source: 'libqemu', kind: 'taint', guest: this.sources.guest, at: new Date(), taints });
  }

  /** Ends every open stream (the guest is closing). */
  endAll(): void {
    for (const end of [...this.streamEnders]) end();
  }

  open(options: GuestEventsOptions = {}): GuestEventStream {
    checkEventsOptions(options);
    const { guest, context } = this.sources;
    const bufferSize = options.bufferSize ?? 1000;
    const queue = new BoundedQueue<GuestEvent>({
      capacity: bufferSize,
      overflow: options.overflow ?? 'error',
      what: `events of guest '${guest}'`,
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

    holdWhileAwaited(queue);

    const onNotice = (n: LibqemuNotice) => queue.push(n);
    this.noticeListeners.add(onNotice);
    stops.push(() => void this.noticeListeners.delete(onNotice));

    /** Pumps one libvirt event stream into this one; its end (or failure) ends this stream. */
    let lastGap = 0;
    const pump = <T>(source: GuestEventSource<T | ConnectionGap>, toEvent: (ev: T) => GuestEvent) => {
      stops.push(() => source.return().then(() => undefined));
      void (async () => {
        try {
          for await (const ev of source) {
            if (isGap(ev)) {
              if (ev.since.getTime() === lastGap) continue; // the other libvirt source already said so
              lastGap = ev.since.getTime();
              queue.push({ source: 'libqemu', kind: 'libvirt-gap', guest, at: new Date(), since: ev.since, until: ev.until });
            } else queue.push(toEvent(ev));
          }
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
        await pump(context.domainEvents({ kinds: libvirtKinds, bufferSize }), (ev): GuestEvent => {
          const base = { guest, at: new Date(), source: 'libvirt' as const };
          if (ev.kind === 'agent-lifecycle') return { ...base, kind: 'agent-lifecycle', state: ev.state, reason: ev.reason };
          return ev.kind === 'lifecycle' ? { ...base, kind: 'lifecycle', event: ev.event, detail: ev.detail } : { ...base, kind: 'reboot' };
        });
      }
      if (options.qmp === false || tornDown) return;
      const names = Array.isArray(options.qmp) ? (options.qmp as readonly string[]) : undefined;
      const via = options.via ?? 'auto';
      if (via !== 'passthrough') {
        // auto falls back to libvirt's QEMU events, which also cover a guest that is not running yet
        const client = await this.sources.monitorClient({ handshakeTimeoutMs: via === 'auto' ? 1000 : 5000 }).catch((err: unknown) => {
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
              queue.push({ source: 'qmp', kind: 'qmp', route: 'monitor', guest, at: new Date(), event: ev.event, data: ev.data as Record<string, unknown> | undefined, timestamp: ev.timestamp });
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
      await pump(context.qemuMonitorEvents({ ...libvirtEventFilter(names), bufferSize }), (ev): GuestEvent => ({
        source: 'qmp',
        kind: 'qmp',
        route: 'passthrough',
        guest,
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
}

/**
 * A consumer awaiting next() keeps the process alive, as one reading a socket would; a stream nobody
 * reads does not (the sources below it are read without holding the process).
 */
function holdWhileAwaited<T>(queue: BoundedQueue<T>): void {
  const next = queue.next.bind(queue);
  let waiting = 0;
  let hold: NodeJS.Timeout | undefined;
  queue.next = () => {
    if (queue.size > 0) return next();
    if (waiting++ === 0) hold = setInterval(() => {}, 1 << 30);
    return next().finally(() => {
      if (--waiting === 0) clearInterval(hold);
    });
  };
}

function isGap(ev: unknown): ev is ConnectionGap {
  return typeof ev === 'object' && ev !== null && (ev as { kind?: unknown }).kind === 'gap' && (ev as ConnectionGap).since instanceof Date;
}

function checkEventsOptions(options: GuestEventsOptions): void {
  const bad = (what: string, hint: string) => new InvalidArgumentError(`guest.events: ${what}`, { hint });
  if (options === null || typeof options !== 'object') throw bad('options must be an object', 'e.g. guest.events({ qmp: ["STOP"] })');
  checkVia(options.via, 'guest.events');
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
