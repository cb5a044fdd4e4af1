import { probeSocket } from '../../src/common/unix-socket.js';

/**
 * The one wait helper of the tests: polls `check` until it gives a value other than undefined/false
 * and returns that value, or fails after `timeoutMs` naming `what`. A check that itself hangs (e.g. an
 * iterator's next()) is cut off at the deadline too.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  const timedOut = () => new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw timedOut();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof expiredMark>((resolve) => (timer = setTimeout(() => resolve(expiredMark), left)));
    const value = await Promise.race([Promise.resolve(check()), expired]).finally(() => clearTimeout(timer));
    if (value === expiredMark) throw timedOut();
    if (value !== undefined && value !== false) return value as T;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

const expiredMark = Symbol('expired');

/** The next item of `stream` that `matches` (others are skipped); fails at the deadline or if the stream ends first. */
export function nextMatching<T>(stream: AsyncIterator<T>, matches: (item: T) => boolean, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  return waitFor(
    options.what ?? 'a matching item',
    async () => {
      const r = await stream.next();
      if (r.done) throw new Error(`the stream ended before ${options.what ?? 'a matching item'} came`);
      return matches(r.value) ? { item: r.value } : undefined;
    },
    { intervalMs: 0, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) },
  ).then((found) => found.item);
}

/**
 * Waits until a process we started listens on the unix socket `path` (it accepts a connection: the file
 * alone appears at bind(), before listen()). Fails at once if the process exits first.
 */
export function waitForListener(path: string, child: { exitCode: number | null }, timeoutMs = 60_000): Promise<true> {
  return waitFor(
    `a listener on ${path}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`the process meant to listen on ${path} exited (${child.exitCode})`);
      return (await probeSocket(path, 1000)) === 'open';
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** Rejects if `p` has not settled when a generous guard fires (a hang detector, not a timing assertion). */
export function settlesBefore<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}
