import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import type { Connection } from '../libvirt/connection.js';
import type { Domain } from '../libvirt/domain.js';
import type { DomainEvent, DomainEventKind, EventStream, QemuMonitorEvent } from '../libvirt/events.js';

export interface RelaySubscription<T> extends AsyncIterableIterator<T> {
  /** Resolves once libvirt has registered the underlying callback. */
  readonly ready: Promise<void>;
  /** Leaves the relay (the libvirt registration goes when its last subscriber leaves). */
  return(): Promise<IteratorResult<T>>;
}

interface Shared<T> {
  stream: EventStream<T>;
  subscribers: Set<BoundedQueue<T>>;
}

/**
 * libvirt refuses a second registration of the same callback for the same domain and event filter on
 * one connection ("event callback already tracked"), yet a guest's reconnect watcher, its event
 * streams and its passthrough clients all want the same events. The relay keeps one libvirt
 * registration per (kind, domain, filter) and fans it out to per-subscriber bounded queues; the
 * registration is dropped when its last subscriber leaves. Filters are still applied by libvirt.
 */
export class EventRelay {
  private readonly shared = new Map<string, Shared<unknown>>();

  constructor(private readonly connection: Connection) {}

  domainEvents(domain: Domain, kinds: readonly DomainEventKind[], options: { bufferSize?: number; overflow?: OverflowPolicy } = {}): RelaySubscription<DomainEvent> {
    const wanted = [...new Set(kinds)].sort();
    return this.subscribe<DomainEvent>(`domain:${domain.uuid}:${wanted.join(',')}`, options, 'libvirt domain events', () =>
      this.connection.domainEvents({ domain, kinds: wanted, bufferSize: 1024, overflow: 'drop-oldest' }),
    );
  }

  qemuEvents(domain: Domain, filter: { event?: string; regex?: boolean }, options: { bufferSize?: number; overflow?: OverflowPolicy } = {}): RelaySubscription<QemuMonitorEvent> {
    return this.subscribe<QemuMonitorEvent>(`qemu:${domain.uuid}:${filter.regex ? 're' : 'name'}:${filter.event ?? '*'}`, options, 'QEMU monitor events', () =>
      this.connection.qemuMonitorEvents({ domain, ...filter, bufferSize: 1024, overflow: 'drop-oldest' }),
    );
  }

  /** Ends every subscription (the hypervisor is closing). */
  async close(): Promise<void> {
    const all = [...this.shared.values()];
    this.shared.clear();
    for (const s of all) {
      for (const q of s.subscribers) q.end();
      await s.stream.return();
    }
  }

  private subscribe<T>(key: string, options: { bufferSize?: number; overflow?: OverflowPolicy }, what: string, open: () => EventStream<T>): RelaySubscription<T> {
    let entry = this.shared.get(key) as Shared<T> | undefined;
    if (!entry) {
      const created: Shared<T> = { stream: open(), subscribers: new Set() };
      entry = created;
      this.shared.set(key, created as Shared<unknown>);
      void this.pump(key, created);
    }
    const shared = entry;
    const queue: BoundedQueue<T> = new BoundedQueue<T>({
      capacity: options.bufferSize ?? 1000,
      overflow: options.overflow ?? 'error',
      what,
      onClose: () => {
        shared.subscribers.delete(queue);
        if (shared.subscribers.size === 0 && this.shared.get(key) === shared) {
          this.shared.delete(key);
          void shared.stream.return();
        }
      },
    });
    shared.subscribers.add(queue);
    return Object.assign(queue, { ready: shared.stream.ready });
  }

  private async pump<T>(key: string, shared: Shared<T>): Promise<void> {
    let failure: unknown;
    try {
      for await (const ev of shared.stream) {
        for (const q of [...shared.subscribers]) q.push(ev);
      }
    } catch (err) {
      failure = err;
    }
    if (this.shared.get(key) === shared) this.shared.delete(key);
    for (const q of [...shared.subscribers]) q.end(failure);
  }
}
