import { errorMessage, withDeadline } from '../common/abort.js';
import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { AnyEvent, EventMap, EventOf, QmpEvent } from './command-map.js';
import { QmpClosedError, QmpStateError, QmpTimeoutError } from './errors.js';
import type { QmpLogger } from './logger.js';
import type { QmpMessage } from './transport.js';

export interface EventsOptions<N extends string, Ev> {
  /** Only these event names. */
  names?: readonly N[];
  /** Only events this returns true for. */
  filter?: (event: Ev) => boolean;
  /** Queue capacity (default: the client's eventBufferSize). */
  bufferSize?: number;
  /** What happens when the queue is full (default 'error': the iteration ends with QueueOverflowError). */
  overflow?: OverflowPolicy;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

export interface WaitForEventOptions<Ev> {
  match?: (event: Ev) => boolean;
  signal?: AbortSignal;
  /** Default: the client's timeoutMs; 0 = none. */
  timeoutMs?: number;
}

export interface EventMatch<N extends string, Ev> extends WaitForEventOptions<Ev> {
  name: N;
}

type AnyQmpEvent = QmpEvent<string, unknown>;

interface Listener {
  names: ReadonlySet<string> | undefined;
  fn: (event: AnyQmpEvent) => void;
}

export interface EventHubOptions {
  /** Default timeout of waits (0 = none). */
  defaultTimeoutMs: number;
  /** Default queue size of events() subscriptions. */
  bufferSize: number;
  logger?: QmpLogger | undefined;
}

/**
 * The events of one connection and everyone listening to them: iterators with their own bounded
 * queues, callbacks, and one-shot waits. Every subscription ends when the connection does: quietly on
 * a deliberate close, with the error when the connection dropped.
 */
export class EventHub<E extends EventMap> {
  private readonly listeners = new Set<Listener>();
  /** Called once when the connection ends: (error, deliberate). */
  private readonly enders = new Set<(error: QmpClosedError, deliberate: boolean) => void>();
  private ended: QmpClosedError | undefined;

  constructor(private readonly options: EventHubOptions) {}

  /** Async iterable of events through its own bounded queue; `break` (or return()) unsubscribes. */
  events(options: EventsOptions<string, AnyEvent<E>> = {}): BoundedQueue<AnyQmpEvent> {
    const names = checkNames(options.names);
    const filter = options.filter as ((e: AnyQmpEvent) => boolean) | undefined;
    if (filter !== undefined && typeof filter !== 'function') throw new InvalidArgumentError('events: filter must be a function');
    const capacity = options.bufferSize ?? this.options.bufferSize;
    if (this.ended) {
      const q = new BoundedQueue<AnyQmpEvent>({ capacity: Math.max(1, capacity) });
      q.end(this.ended);
      return q;
    }
    const entry: Listener = {
      names,
      fn: (ev) => {
        if (filter && !this.safeMatch(filter, ev)) return;
        queue.push(ev);
      },
    };
    const onEnd = (err: QmpClosedError, deliberate: boolean) => queue.end(deliberate ? undefined : err);
    const onAbort = () => queue.end();
    const queue = new BoundedQueue<AnyQmpEvent>({
      capacity,
      overflow: options.overflow ?? 'error',
      what: 'QMP events',
      onDrop: (n) => this.options.logger?.warn?.('event subscriber overflowed', { dropped: n, capacity }),
      onClose: () => {
        this.listeners.delete(entry);
        this.enders.delete(onEnd);
        options.signal?.removeEventListener('abort', onAbort);
      },
    });
    this.listeners.add(entry);
    this.enders.add(onEnd);
    if (options.signal?.aborted) queue.end();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    return queue;
  }

  /** Calls `fn` for every event (of these names); returns the unsubscribe function. */
  on(fn: (event: AnyQmpEvent) => void, names?: readonly string[]): () => void {
    const entry: Listener = { names: checkNames(names), fn };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  /**
   * Subscribes now and resolves with the next event called `name` (accepted by `match`); `cancel()`
   * stops waiting (executeAndWait cancels when its command fails).
   */
  startWait<N extends string>(name: N, options: WaitForEventOptions<EventOf<E, N>>): { promise: Promise<EventOf<E, N>>; cancel(): void } {
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('waitForEvent: name must be a non-empty event name', { hint: 'e.g. "STOP"' });
    const match = options.match as ((e: AnyQmpEvent) => boolean) | undefined;
    const timeoutMs = options.timeoutMs ?? this.options.defaultTimeoutMs;
    let cancel: () => void = () => {};
    const what = `waiting for event ${name}`;
    const promise = withDeadline({ timeoutMs, signal: options.signal, onTimeout: () => new QmpTimeoutError(what, timeoutMs) }, (signal) => {
      if (this.ended) return Promise.reject(this.ended);
      return new Promise<EventOf<E, N>>((resolve, reject) => {
        const entry: Listener = {
          names: new Set([name]),
          fn: (ev) => {
            if (match && !this.safeMatch(match, ev)) return;
            done();
            resolve(ev as EventOf<E, N>);
          },
        };
        const onEnd = (err: QmpClosedError) => (done(), reject(err));
        const onAbort = () => (done(), reject(signal.reason));
        const done = () => {
          this.listeners.delete(entry);
          this.enders.delete(onEnd);
          signal.removeEventListener('abort', onAbort);
        };
        cancel = () => (done(), reject(new QmpStateError(`wait for ${name} cancelled`)));
        this.listeners.add(entry);
        this.enders.add(onEnd);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    });
    promise.catch(() => {});
    return { promise, cancel: () => cancel() };
  }

  /** Subscribes first, then runs `action`, then waits for the event: no race between the two. A failed action cancels the wait. */
  async runAndWait<R, N extends string>(eventMatch: EventMatch<N, EventOf<E, N>>, action: () => Promise<R>): Promise<{ result: R; event: EventOf<E, N> }> {
    if (!eventMatch || typeof eventMatch.name !== 'string') throw new InvalidArgumentError('executeAndWait: eventMatch.name must be an event name', { hint: 'e.g. { name: "STOP" }' });
    const wait = this.startWait(eventMatch.name, eventMatch);
    try {
      const result = await action();
      return { result, event: await wait.promise };
    } catch (err) {
      wait.cancel();
      throw err;
    }
  }

  /** Hands one event message to every listener that wants it; a listener's failure is logged, not spread. */
  dispatch(msg: QmpMessage): void {
    const ev: AnyQmpEvent = {
      event: msg.event as string,
      data: msg.data,
      timestamp: (msg.timestamp as QmpEvent['timestamp'] | undefined) ?? { seconds: -1, microseconds: -1 },
    };
    for (const entry of [...this.listeners]) {
      if (entry.names && !entry.names.has(ev.event)) continue;
      try {
        entry.fn(ev);
      } catch (err) {
        this.options.logger?.warn?.('an event listener threw', { event: ev.event, error: errorMessage(err) });
      }
    }
  }

  /** The connection ended: iterators end (quietly when `deliberate`), waits reject with `error`. */
  end(error: QmpClosedError, deliberate: boolean): void {
    if (this.ended) return;
    this.ended = error;
    for (const fn of [...this.enders]) fn(error, deliberate);
    this.enders.clear();
  }

  private safeMatch(fn: (e: AnyQmpEvent) => boolean, ev: AnyQmpEvent): boolean {
    try {
      return fn(ev) === true;
    } catch (err) {
      this.options.logger?.warn?.('an event filter threw; event skipped for that subscriber', { error: errorMessage(err) });
      return false;
    }
  }
}

function checkNames(names: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (names === undefined) return undefined;
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new InvalidArgumentError('names must be an array of event names', { hint: 'e.g. { names: ["STOP", "RESUME"] }' });
  }
  return new Set(names);
}
