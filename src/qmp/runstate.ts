import { errorMessage, withDeadline } from '../common/abort.js';
import { QmpTimeoutError } from './errors.js';
import type { QmpLogger } from './logger.js';

/** A client's lifecycle; `idle` is a constructed client that has not been opened yet. */
export type Runstate = 'idle' | 'connecting' | 'negotiating' | 'running' | 'closing' | 'closed';

type RunstateListener = (state: Runstate, previous: Runstate) => void;

/** The current runstate and who is told when it changes (the transitions themselves are the client's). */
export class RunstateCell {
  private value: Runstate = 'idle';
  private readonly listeners = new Set<RunstateListener>();

  constructor(private readonly logger: QmpLogger | undefined) {}

  get current(): Runstate {
    return this.value;
  }

  set(next: Runstate): void {
    const previous = this.value;
    if (previous === next) return;
    this.value = next;
    notifyAll(this.listeners, [next, previous], this.logger, 'a runstate listener threw');
  }

  on(listener: RunstateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the state is `state` (or rejects on timeout/abort). */
  waitFor(state: Runstate, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.value === state) return Promise.resolve();
    const onTimeout = () => new QmpTimeoutError(`waiting for runstate "${state}"`, timeoutMs);
    return withDeadline({ timeoutMs, signal, onTimeout }, (aborted) =>
      new Promise<void>((resolve, reject) => {
        const off = this.on((s) => s === state && (off(), resolve()));
        aborted.addEventListener('abort', () => (off(), reject(aborted.reason)), { once: true });
      }),
    );
  }
}

/** Calls every listener; one that throws is logged and must not break the connection. */
export function notifyAll<A extends unknown[]>(listeners: ReadonlySet<(...args: A) => void>, args: A, logger: QmpLogger | undefined, what: string): void {
  for (const fn of [...listeners]) {
    try {
      fn(...args);
    } catch (err) {
      logger?.warn?.(what, { error: errorMessage(err) });
    }
  }
}
