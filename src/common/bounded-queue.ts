import { LibqemuError } from './errors.js';

/** A subscriber fell behind and its queue filled up; `dropped` items were lost after the ones it got. */
export class QueueOverflowError extends LibqemuError {
  constructor(
    readonly dropped: number,
    readonly capacity: number,
    what = 'events',
  ) {
    super(`${what} arrived faster than they were consumed: the ${capacity}-item buffer overflowed and ${dropped} were dropped`, {
      hint: 'consume faster, raise bufferSize, or subscribe with overflow: "drop-oldest" and watch .dropped',
    });
  }
}

export type OverflowPolicy =
  /** Default: deliver what was buffered, then end the iteration with QueueOverflowError. */
  | 'error'
  /** Keep going: drop the oldest buffered item, count it in `.dropped`, call onDrop. */
  | 'drop-oldest';

export interface BoundedQueueOptions {
  capacity: number;
  overflow?: OverflowPolicy;
  /** Called (synchronously) for every item that is dropped. */
  onDrop?: (dropped: number) => void;
  /** Called once when the consumer stops (break, return, error, or end): unsubscribe here. */
  onClose?: () => void;
  /** Used in the overflow error's message, e.g. "QMP events". */
  what?: string;
}

/**
 * One subscriber's queue: the producer pushes synchronously and never blocks; the consumer reads it
 * as an async iterator. Memory is bounded by `capacity`; loss is never silent (see OverflowPolicy).
 */
export class BoundedQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: unknown;
  private overflowed = false;
  private closed = false;
  /** Items lost to overflow so far. */
  dropped = 0;

  constructor(private readonly options: BoundedQueueOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`bufferSize must be a positive integer, got ${String(options.capacity)}`);
    }
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Adds an item; returns false if it (or an older one) had to be dropped. */
  push(item: T): boolean {
    if (this.ended || this.overflowed) {
      if (this.overflowed) this.noteDrop();
      return false;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: item, done: false });
      return true;
    }
    if (this.size >= this.options.capacity) {
      if ((this.options.overflow ?? 'error') === 'error') {
        this.overflowed = true;
        this.noteDrop();
        return false;
      }
      this.shift();
      this.noteDrop();
      this.items.push(item);
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** No more items: the consumer gets what is buffered, then `done` (or `error` if given). */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (this.waiter && this.size === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      this.settleEmpty(w);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) return Promise.resolve({ value: this.shift(), done: false });
    if (this.overflowed) {
      this.finish();
      return Promise.reject(new QueueOverflowError(this.dropped, this.options.capacity, this.options.what));
    }
    if (this.ended) {
      return new Promise((resolve, reject) => this.settleEmpty({ resolve, reject }));
    }
    if (this.waiter) return Promise.reject(new Error('BoundedQueue: next() called while a previous next() is pending'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.finish();
    this.items.length = 0;
    this.head = 0;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private settleEmpty(w: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }): void {
    this.finish();
    if (this.failure !== undefined) {
      const f = this.failure;
      this.failure = undefined;
      w.reject(f);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  private finish(): void {
    this.ended = true;
    if (!this.closed) {
      this.closed = true;
      this.options.onClose?.();
    }
  }

  private noteDrop(): void {
    this.dropped++;
    this.options.onDrop?.(this.dropped);
  }

  private shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }
}
