import { InvalidArgumentError } from '../common/errors.js';

/**
 * What to do when a migration has not finished by its deadline. A migration whose guest dirties memory
 * faster than the link carries it never converges on its own (a TCG guest
 * rewriting all its memory was measured still migrating after 10 minutes and 1152 passes).
 */
export type WatchdogOptions =
  /** Cancel the migration; the guest keeps running on the source and the call fails with reason 'deadline'. */
  | { deadlineMs: number; action: 'abort' }
  /** Pause the guest on the source so no more memory is dirtied; the migration then finishes, and the guest runs again on the destination. */
  | { deadlineMs: number; action: 'pause' }
  /**
   * Raise QEMU's downtime-limit by `stepMs` every `intervalMs` up to `maxMs`, so QEMU may switch over
   * with a longer pause; if it still has not finished `intervalMs` after reaching `maxMs`, do `then`.
   */
  | {
      deadlineMs: number;
      action: 'raise-downtime';
      /** First limit set at the deadline and the increment after (default 500 ms). */
      stepMs?: number;
      /** Highest limit (default 5000 ms). */
      maxMs?: number;
      /** Time between steps (default 1000 ms). */
      intervalMs?: number;
      /** Last resort after the highest limit (default 'abort'). */
      then?: 'abort' | 'pause';
    };

export type WatchdogAction = WatchdogOptions['action'];

/** The levers the watchdog pulls; the engine implements them with libvirt (and QMP). */
export interface WatchdogActuator {
  abort(): Promise<void>;
  pause(): Promise<void>;
  setDowntimeLimit(ms: number): Promise<void>;
}

export type WatchdogState =
  /** Waiting for the deadline. */
  | 'armed'
  /** Raising the downtime limit step by step. */
  | 'raising'
  /** The guest was paused; waiting for the migration to finish. */
  | 'paused'
  /** An abort was sent (by the deadline or by abort()). */
  | 'aborting'
  /** The migration settled; nothing more will happen. */
  | 'stopped';

export interface WatchdogEvents {
  /** Each state change, with the downtime limit just set when raising. */
  onTransition?(state: WatchdogState, detail: { downtimeLimitMs?: number; byDeadline: boolean }): void;
  /** An actuator call failed (the watchdog keeps going and falls back to abort where it can). */
  onActuatorError?(err: unknown, action: string): void;
}

export interface NormalizedWatchdog {
  deadlineMs: number;
  action: WatchdogAction;
  stepMs: number;
  maxMs: number;
  intervalMs: number;
  then: 'abort' | 'pause';
}

export function validateWatchdog(options: WatchdogOptions): NormalizedWatchdog {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('watchdog must be an object like { deadlineMs: 30000, action: "abort" }', { hint: 'or leave it out for no watchdog' });
  }
  const positive = (name: string, v: unknown, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new InvalidArgumentError(`watchdog.${name} must be a positive number of milliseconds, got ${String(v)}`, { hint: `e.g. ${name}: ${dflt}` });
    }
    return v;
  };
  const deadlineMs = positive('deadlineMs', options.deadlineMs, NaN);
  if (Number.isNaN(deadlineMs)) throw new InvalidArgumentError('watchdog.deadlineMs is required', { hint: 'e.g. { deadlineMs: 30000, action: "abort" }' });
  if (!['abort', 'pause', 'raise-downtime'].includes(options.action)) {
    throw new InvalidArgumentError(`watchdog.action must be 'abort', 'pause' or 'raise-downtime', got ${String(options.action)}`, {
      hint: "'abort' cancels, 'pause' stops the guest so the migration finishes, 'raise-downtime' allows a longer switch-over step by step",
    });
  }
  const raise = options.action === 'raise-downtime' ? options : undefined;
  const then = raise?.then ?? 'abort';
  if (then !== 'abort' && then !== 'pause') {
    throw new InvalidArgumentError(`watchdog.then must be 'abort' or 'pause', got ${String(then)}`, { hint: "default is 'abort'" });
  }
  const stepMs = positive('stepMs', raise?.stepMs, 500);
  const maxMs = positive('maxMs', raise?.maxMs, 5000);
  if (maxMs < stepMs) throw new InvalidArgumentError(`watchdog.maxMs (${maxMs}) is below stepMs (${stepMs})`, { hint: 'raise maxMs or lower stepMs' });
  return { deadlineMs, action: options.action, stepMs, maxMs, intervalMs: positive('intervalMs', raise?.intervalMs, 1000), then };
}

/**
 * The watchdog's state machine. start() arms the deadline; stop() is called when the migration settles.
 * abort() works in every state (it is also the user's abort). Every actuator call is awaited before
 * the next step, so the actions never overlap.
 */
export class MigrationWatchdog {
  private state: WatchdogState | 'idle' = 'idle';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private limit = 0;
  private abortedByDeadline = false;
  private abortPromise: Promise<void> | undefined;
  private pausedByUs = false;

  constructor(
    private readonly config: NormalizedWatchdog | undefined,
    private readonly actuator: WatchdogActuator,
    private readonly events: WatchdogEvents = {},
  ) {}

  get current(): WatchdogState | 'idle' {
    return this.state;
  }

  /** True when the watchdog (not the user) aborted the migration. */
  get firedAbort(): boolean {
    return this.abortedByDeadline;
  }

  /** True when the guest was paused by the watchdog (the engine resumes it if the migration fails). */
  get pausedGuest(): boolean {
    return this.pausedByUs;
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.transition('armed', false);
    if (this.config) this.schedule(this.config.deadlineMs, () => this.onDeadline());
  }

  /** Cancels the migration now. Safe to call in any state and more than once. */
  abort(): Promise<void> {
    return this.doAbort(false);
  }

  /** The migration settled: no further actions. */
  stop(): void {
    this.clear();
    if (this.state !== 'stopped') this.transition('stopped', false);
  }

  private async onDeadline(): Promise<void> {
    if (this.state !== 'armed' || !this.config) return;
    switch (this.config.action) {
      case 'abort':
        return this.doAbort(true);
      case 'pause':
        return this.doPause();
      case 'raise-downtime':
        this.limit = 0;
        return this.raiseStep();
    }
  }

  private async raiseStep(): Promise<void> {
    const cfg = this.config!;
    if (this.state === 'stopped' || this.state === 'aborting' || this.state === 'paused') return;
    if (this.limit >= cfg.maxMs) {
      return cfg.then === 'pause' ? this.doPause() : this.doAbort(true);
    }
    this.limit = Math.min(cfg.maxMs, this.limit + cfg.stepMs);
    this.transition('raising', true, this.limit);
    try {
      await this.actuator.setDowntimeLimit(this.limit);
    } catch (err) {
      this.events.onActuatorError?.(err, 'setDowntimeLimit');
      if (this.isSettled()) return;
      return this.doAbort(true);
    }
    if (this.isSettled()) return;
    this.schedule(cfg.intervalMs, () => this.raiseStep());
  }

  private async doPause(): Promise<void> {
    if (this.isSettled()) return;
    this.clear();
    try {
      await this.actuator.pause();
      this.pausedByUs = true;
      if (this.isSettled()) return;
      this.transition('paused', true);
    } catch (err) {
      this.events.onActuatorError?.(err, 'pause');
      if (!this.isSettled()) await this.doAbort(true);
    }
  }

  private doAbort(byDeadline: boolean): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    if (this.abortPromise) return this.abortPromise;
    this.clear();
    this.abortedByDeadline = byDeadline;
    this.transition('aborting', byDeadline);
    this.abortPromise = this.actuator.abort().catch((err: unknown) => {
      this.events.onActuatorError?.(err, 'abort');
      throw err;
    });
    return this.abortPromise;
  }

  private isSettled(): boolean {
    return this.state === 'stopped' || this.state === 'aborting';
  }

  private transition(state: WatchdogState, byDeadline: boolean, downtimeLimitMs?: number): void {
    this.state = state;
    this.events.onTransition?.(state, downtimeLimitMs === undefined ? { byDeadline } : { byDeadline, downtimeLimitMs });
  }

  private schedule(ms: number, fn: () => Promise<void>): void {
    this.clear();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn().catch(() => {
        /* reported through onActuatorError */
      });
    }, ms);
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
