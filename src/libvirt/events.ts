import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { DOMAIN_EVENT_IDS } from '../generated/libvirt/event-ids.js';
import type { DomainCore as Domain } from './domain-core.js';
import type { LibvirtObject } from './object.js';
import { agentLifecycleWords, lifecycleDetailName, lifecycleEventName, type LifecycleEventName } from './names.js';

export type { LifecycleEventName } from './names.js';

export interface DomainIdentity {
  name: string;
  uuid: string;
}


export type DomainEvent =
  | { kind: 'lifecycle'; domain: DomainIdentity; event: LifecycleEventName; detail: string }
  | { kind: 'reboot'; domain: DomainIdentity }
  /** An outgoing migration started RAM pass `iteration` (1, 2, …); on the source. */
  | { kind: 'migration-iteration'; domain: DomainIdentity; iteration: number }
  /** A job ended; `stats` are its VIR_DOMAIN_JOB_* statistics (operation, time_elapsed, downtime, memory_*…). */
  | { kind: 'job-completed'; domain: DomainIdentity; stats: Record<string, number | bigint | boolean | string> }
  /** The guest agent connected to or disconnected from its channel (VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE). */
  | { kind: 'agent-lifecycle'; domain: DomainIdentity; state: 'connected' | 'disconnected'; reason: 'unknown' | 'domain-started' | 'channel' };

/** Every virDomainEventID, by libqemu's name for it (VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON → 'io-error-reason'). */
export type DomainEventName = keyof typeof DOMAIN_EVENT_IDS;

/**
 * The events libqemu decodes into their own shapes above; every other virDomainEventID arrives as a
 * GenericDomainEvent carrying its callback's arguments by their libvirt names.
 */
export type DomainEventKind = DomainEvent['kind'];

/** An event of any virDomainEventID other than the four above, e.g. { kind: 'device-removed', domain, devAlias }. */
export interface GenericDomainEvent {
  kind: Exclude<DomainEventName, DomainEventKind>;
  domain: DomainIdentity;
  [field: string]: unknown;
}

/** A network, storage pool, node device or secret event: its kind, the object, and the callback's arguments. */
export interface ObjectEvent {
  kind: string;
  [field: string]: unknown;
}

export interface QemuMonitorEvent {
  domain: DomainIdentity;
  /** QEMU's event name, e.g. 'STOP'. */
  event: string;
  data: Record<string, unknown> | undefined;
  timestamp: { seconds: number; microseconds: number };
}

/**
 * The connection to the daemon was lost between `since` and `until` and has been re-established: events
 * of that interval are gone, so re-read whatever state you track. Every open stream yields one, then the
 * events that follow (its subscriptions are registered again on the new connection).
 */
export interface ConnectionGap {
  kind: 'gap';
  since: Date;
  until: Date;
}

export interface SubscriptionOptions {
  /** Events buffered for a slow consumer before overflow (default 256). */
  bufferSize?: number;
  /** What happens on overflow (default 'error': the iteration ends with QueueOverflowError). */
  overflow?: OverflowPolicy;
}

export interface DomainEventOptions extends SubscriptionOptions {
  /** Only this domain's events (filtered by libvirt). */
  domain?: Domain;
  /** Which kinds (default lifecycle and reboot); any virDomainEventID name. */
  kinds?: DomainEventName[];
}

export interface ObjectEventOptions<O extends LibvirtObject = LibvirtObject> extends SubscriptionOptions {
  /** Only this object's events (filtered by libvirt). */
  object?: O;
  /** Which kinds (default all of this family). */
  kinds?: string[];
}

export interface QemuMonitorEventOptions extends SubscriptionOptions {
  domain?: Domain;
  /** Only this event name (or pattern, with `regex`), filtered by libvirt. */
  event?: string;
  /** Treat `event` as a POSIX extended regular expression. */
  regex?: boolean;
  /** Match `event` case-insensitively. */
  nocase?: boolean;
}

/**
 * An event subscription: an async iterable over a bounded queue. `ready` resolves once libvirt has
 * registered the callback (calls made on the same connection after subscribing wait for it, so their
 * events are never missed); stopping the iteration (break/return) deregisters it in libvirt.
 */
export class EventStream<T> implements AsyncIterableIterator<T> {
  /** @internal */
  readonly queue: BoundedQueue<T>;
  readonly ready: Promise<void>;
  /** @internal */
  settleReady!: (err?: unknown) => void;
  /** The deregistration started when the stream closed (return() waits for it and reports its failure). */
  private deregistered: Promise<void> | undefined;

  /** @internal */
  constructor(
    options: SubscriptionOptions,
    what: string,
    onClose: () => Promise<void> | void,
    /** Called with +1 while a consumer awaits next() on an empty queue, -1 when that settles. */
    private readonly holdProcess: (delta: 1 | -1) => void = () => {},
  ) {
    const size = options.bufferSize ?? 256;
    if (!Number.isInteger(size) || size < 1) {
      throw new InvalidArgumentError(`bufferSize must be a positive integer, got ${String(options.bufferSize)}`, { hint: 'e.g. 256 (events held for a slow consumer)' });
    }
    if (options.overflow !== undefined && options.overflow !== 'error' && options.overflow !== 'drop-oldest') {
      throw new InvalidArgumentError(`overflow must be 'error' or 'drop-oldest', got ${JSON.stringify(options.overflow)}`);
    }
    this.queue = new BoundedQueue<T>({
      capacity: size,
      overflow: options.overflow ?? 'error',
      what,
      onClose: () => {
        const p = onClose();
        if (p) {
          this.deregistered = p;
          p.catch(() => {}); // reported by return(); a stream ended by the connection has no one to tell
        }
      },
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.ready.catch(() => {}); // also surfaced through the iteration
  }

  /** Events lost to overflow (with overflow: 'drop-oldest'). */
  get dropped(): number {
    return this.queue.dropped;
  }

  /** A consumer waiting here keeps the process alive (like a socket being read); one that stops waiting does not. */
  next(): Promise<IteratorResult<T>> {
    if (this.queue.size > 0) return this.queue.next();
    const p = this.queue.next();
    this.holdProcess(1);
    const release = (): void => this.holdProcess(-1);
    p.then(release, release);
    return p;
  }

  /** Stops the stream and deregisters its callback in libvirt; rejects if libvirt refused the deregistration. */
  async return(): Promise<IteratorResult<T>> {
    const r = await this.queue.return();
    if (this.deregistered) await this.deregistered;
    return r;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export function lifecycleEvent(domain: DomainIdentity, event: number, detail: number): DomainEvent {
  const name = lifecycleEventName(event);
  return { kind: 'lifecycle', domain, event: name, detail: lifecycleDetailName(name, detail) };
}

export function agentLifecycleEvent(domain: DomainIdentity, state: number, reason: number): DomainEvent {
  return { kind: 'agent-lifecycle', domain, ...agentLifecycleWords(state, reason) } as DomainEvent;
}

export function qemuMonitorEvent(domain: DomainIdentity, event: string, seconds: number, micros: number, details: string | null): QemuMonitorEvent {
  let data: Record<string, unknown> | undefined;
  if (details) {
    try {
      data = JSON.parse(details) as Record<string, unknown>;
    } catch {
      data = { raw: details };
    }
  }
  return { domain, event, data, timestamp: { seconds, microseconds: micros } };
}
