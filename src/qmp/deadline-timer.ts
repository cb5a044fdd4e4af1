import { performance } from 'node:perf_hooks';

const MAX_DELAY_MS = 2 ** 31 - 1;

/** Milliseconds on a monotonic clock, for deadlines. */
export function monotonicNow(): number {
  return performance.now();
}

/**
 * One lazily re-armed timer for many deadlines (the per-command timeouts of a client). A command costs a
 * comparison instead of a setTimeout + clearTimeout pair; finished commands are not unregistered: when
 * the timer fires, `expire(now)` settles whatever is overdue and returns the earliest deadline still
 * pending (Infinity for none), and the timer re-arms for it. With one timeout for every command the
 * deadlines arrive in order, so the timer fires about once per timeout period while commands flow.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for (Infinity: not armed). */
  private armedFor = Infinity;

  constructor(private readonly expire: (now: number) => number) {}

  /** Makes sure the timer fires no later than `deadline` (monotonicNow() based) and keeps the process alive. */
  ensure(deadline: number): void {
    if (deadline < this.armedFor) this.arm(deadline);
    else this.timer!.ref();
  }

  /** Nothing is pending: a timer armed for stale deadlines must not keep the process alive. */
  idle(): void {
    this.timer?.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = deadline;
    // Capped: Node turns a delay beyond 2^31-1 ms into 1 ms; a far deadline just re-arms when reached.
    this.timer = setTimeout(this.fire, Math.min(MAX_DELAY_MS, Math.max(1, Math.ceil(deadline - monotonicNow()))));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const next = this.expire(monotonicNow());
    // expire() may have armed the timer itself (it should not, but then keep the earlier one).
    if (next < this.armedFor) this.arm(next);
  };
}
