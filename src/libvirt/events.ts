import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import { LIFECYCLE_DETAIL_NAMES, LIFECYCLE_EVENT_NAMES } from './constants.js';
import type { Domain } from './domain.js';

export interface DomainIdentity {
  name: string;
  uuid: string;
}

export type LifecycleEventName = (typeof LIFECYCLE_EVENT_NAMES)[number];

export type DomainEvent =
  | { kind: 'lifecycle'; domain: DomainIdentity; event: LifecycleEventName; detail: string }
  | { kind: 'reboot'; domain: DomainIdentity }
  /** An outgoing migration started RAM pass `iteration` (1, 2, …); on the source. */
  | { kind: 'migration-iteration'; domain: DomainIdentity; iteration: number }
  /** A job ended; `stats` are its VIR_DOMAIN_JOB_* statistics (operation, time_elapsed, downtime, memory_*…). */
  | { kind: 'job-completed'; domain: DomainIdentity; stats: Record<string, number | bigint | boolean | string> }
  /** The guest agent connected to or disconnected from its channel (libvirt's VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE). */
  | { kind: 'agent-lifecycle'; domain: DomainIdentity; state: 'connected' | 'disconnected'; reason: 'unknown' | 'domain-started' | 'channel' };

export type DomainEventKind = DomainEvent['kind'];

export interface QemuMonitorEvent {
  domain: DomainIdentity;
  /** QEMU's event name, e.g. 'STOP'. */
  event: string;
  data: Record<string, unknown> | undefined;
  timestamp: { seconds: number; microseconds: number };
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
  /** Which kinds (default both). */
  kinds?: DomainEventKind[];
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

  /** @internal */
  constructor(
    options: SubscriptionOptions,
    what: string,
    onClose: () => void,
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
      onClose,
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

  return(): Promise<IteratorResult<T>> {
    return this.queue.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export function lifecycleEvent(domain: DomainIdentity, event: number, detail: number): DomainEvent {
  const name = LIFECYCLE_EVENT_NAMES[event] ?? (`unknown-${event}` as LifecycleEventName);
  return { kind: 'lifecycle', domain, event: name, detail: LIFECYCLE_DETAIL_NAMES[name]?.[detail] ?? `unknown-${detail}` };
}

export function agentLifecycleEvent(domain: DomainIdentity, state: number, reason: number): DomainEvent {
  // virConnectDomainEventAgentLifecycleState / ...Reason
  return { kind: 'agent-lifecycle', domain, state: state === 1 ? 'connected' : 'disconnected', reason: reason === 1 ? 'domain-started' : reason === 2 ? 'channel' : 'unknown' };
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
