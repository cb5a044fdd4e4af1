/**
 * Small helpers that bound a wait: every wait in libqemu has a timeout or an AbortSignal, and these are
 * the two ways it is done. Generic on purpose: the error a timeout produces is the caller's choice.
 */

/** The message of anything thrown, for error texts. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Races `promise` against `signal`: rejects with the signal's reason when it aborts first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

export interface DeadlineOptions {
  /** 0 = no timeout (the caller's signal, if any, still bounds the wait). */
  timeoutMs: number;
  /** The caller's signal: aborting it aborts the work with its reason. */
  signal?: AbortSignal | undefined;
  /** The error the work is aborted with when the time is up. */
  onTimeout: () => Error;
}

/**
 * Runs `fn` with a signal that aborts on the caller's signal or when `timeoutMs` passes, and rejects
 * as soon as that signal aborts even if `fn` ignores it. The timer and listener are always removed.
 */
export async function withDeadline<T>(options: DeadlineOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const { timeoutMs, signal: outer, onTimeout } = options;
  outer?.throwIfAborted();
  const ac = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => ac.abort(onTimeout()), timeoutMs) : undefined;
  const onOuter = () => ac.abort(outer!.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  try {
    return await abortable(fn(ac.signal), ac.signal);
  } finally {
    if (timer) clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
  }
}
