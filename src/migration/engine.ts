/**
 * The migration engine behind guest.migrate(): one peer-to-peer virDomainMigrateToURI3 on the source's
 * connection, and around it, on a second connection and the guest's QMP route, everything libvirt
 * does not do: the moved second monitor, QEMU parameters at the right moment, merged progress, a
 * watchdog, abort, and an error that says what failed.
 */
import { InvalidArgumentError } from '../common/errors.js';
import { isLocalUri } from '../domain/uri.js';
import { normalizeTarget, planDestinationXml, type MigrationTarget } from './destination.js';
import { classifyMigrationFailure, MigrationError, type LibvirtErrorLike } from './errors.js';
import { buildMigrationCall, normalizeOptions, type MigrateOptions, type NormalizedOptions, type QemuParameterValue } from './options.js';
import type { LibvirtMigrationEvent, MigrationControl, MigrationQmp, MigrationSource } from './ports.js';
import { ProgressTracker, type JobStatsRecord, type MigrationProgress, type ProgressSubscribeOptions, type QueryMigrateInfo } from './progress.js';
import { MigrationWatchdog, type WatchdogState } from './watchdog.js';


/** How long a successful call waits for libvirt's job-completed event (it may trail the call's return). */
const JOB_COMPLETED_GRACE_MS = 1000;
/** How often an abort requested before libvirt's job exists is retried. */
const ABORT_RETRY_MS = 100;

export interface MigrationStats {
  /** RAM passes, from job-completed (or the last progress). */
  passes: number;
  transferredBytes: number;
  totalBytes: number;
  /** The guest's real downtime at the switch-over, when libvirt reported it. */
  downtimeMs: number | undefined;
  /** libvirt's own job time, when reported. */
  jobTimeMs: number | undefined;
  /** Every field libvirt's job-completed event carried. */
  raw: JobStatsRecord | undefined;
}

export interface MigrationResult {
  /** The guest's name on the destination. */
  name: string;
  destinationUri: string;
  /** The second monitor's path on the destination (undefined when the guest has none). */
  destinationQmpSocket: string | undefined;
  /** Wall time of the whole call, ms. */
  durationMs: number;
  stats: MigrationStats;
  /** What the watchdog did, if anything. */
  watchdog: { state: WatchdogState | 'idle'; pausedGuest: boolean; downtimeLimitMs: number | undefined };
  /** The guest is defined on the destination / still defined on the source. */
  persistent: boolean;
}

export interface StartMigrationInput<R extends MigrationResult = MigrationResult> {
  source: MigrationSource;
  /** Calls made while the migration runs, on a connection the migration call does not occupy. */
  control: MigrationControl;
  /** Whether the engine closes `control` when done. */
  ownsControl?: boolean;
  /**
   * The guest's QMP route on the source, for QEMU parameters and QEMU's own progress; optional. A
   * function is called once at the start (and its client closed at the end when `ownsQmp`).
   */
  qmp?: MigrationQmp | (() => Promise<MigrationQmp | undefined>);
  ownsQmp?: boolean;
  destination: string | MigrationTarget;
  options?: MigrateOptions;
  /** Runs first, e.g. to create the destination's monitor directory. */
  prepare?: () => Promise<void>;
  /** Turns the engine's result into the caller's (e.g. adds the Guest on the destination). */
  finish?: (result: MigrationResult) => Promise<R>;
}

/**
 * A migration in progress. Await it (it is a PromiseLike of the result), read `progress()`, or
 * `abort()` it at any time. Whatever happens, the guest keeps running on the source unless the
 * migration succeeded.
 */
export class MigrationJob<R extends MigrationResult = MigrationResult> implements PromiseLike<R> {
  readonly result: Promise<R>;
  private readonly tracker = new ProgressTracker();
  private readonly run: MigrationRun;

  /** @internal use startMigration() */
  constructor(input: StartMigrationInput<R>, options: NormalizedOptions, target: MigrationTarget) {
    this.run = new MigrationRun(input as StartMigrationInput, options, target, this.tracker);
    const finish = input.finish;
    this.result = finish ? this.run.execute().then(finish) : (this.run.execute() as Promise<R>);
    // The job is usually awaited; a caller who only reads progress still must not see an unhandled rejection.
    this.result.catch(() => undefined);
  }

  /** Snapshots as they change, starting with the current one; ends when the migration settles. */
  progress(options?: ProgressSubscribeOptions): AsyncIterableIterator<MigrationProgress> {
    return this.tracker.subscribe(options);
  }

  /** A synchronous progress listener (e.g. for a progress bar); returns the unsubscribe function. */
  onProgress(listener: (p: MigrationProgress) => void): () => void {
    return this.tracker.onProgress(listener);
  }

  get current(): MigrationProgress {
    return this.tracker.current;
  }

  /**
   * Cancels the migration. Resolves once libvirt accepted the abort (or there was nothing left to
   * abort); the job's result then rejects with a MigrationError of reason 'aborted'.
   */
  abort(): Promise<void> {
    return this.run.abort();
  }

  then<A = R, B = never>(
    onfulfilled?: ((value: R) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.result.then(onfulfilled, onrejected);
  }
}

/** Validates everything, then starts the migration. Invalid input throws here, synchronously. */
export function startMigration<R extends MigrationResult = MigrationResult>(input: StartMigrationInput<R>): MigrationJob<R> {
  if (!input || typeof input !== 'object' || !input.source || !input.control) {
    throw new InvalidArgumentError('startMigration needs { source, control, destination }', { hint: 'use guest.migrate(), which provides them' });
  }
  const options = normalizeOptions(input.options);
  const target = normalizeTarget(input.destination);
  if (Object.keys(options.qemuParameters).length > 0 && !input.qmp) {
    throw new InvalidArgumentError('qemuParameters are set through QMP, but no QMP route to the guest was given', {
      hint: 'give the guest a second QMP monitor (or use the facade, which provides the route), or drop qemuParameters',
    });
  }
  return new MigrationJob<R>(input, options, target);
}

class MigrationRun {
  private readonly watchdog: MigrationWatchdog;
  private qmp: MigrationQmp | undefined;
  private settled = false;
  private userAborted = false;
  private qemuParamFailure: MigrationError | undefined;
  private completedStats: JobStatsRecord | undefined;
  private completedWaiter: (() => void) | undefined;
  private sawSetup = false;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private polling = false;
  private downtimeLimitMs: number | undefined;
  private migrateCallStarted = false;
  private timedOut = false;
  private pauseRequested = false;
  private readonly startedAt = performance.now();
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  constructor(
    private readonly input: StartMigrationInput,
    private readonly options: NormalizedOptions,
    private readonly target: MigrationTarget,
    private readonly tracker: ProgressTracker,
  ) {
    this.watchdog = new MigrationWatchdog(
      options.watchdog,
      {
        abort: () => this.abortJob(),
        pause: () => this.pauseGuest(),
        setDowntimeLimit: (ms) => this.setDowntimeLimit(ms),
      },
      {
        onTransition: (_state, detail) => {
          if (detail.downtimeLimitMs !== undefined) this.tracker.downtimeLimit(detail.downtimeLimitMs);
        },
      },
    );
  }

  async execute(): Promise<MigrationResult> {
    const { source } = this.input;
    const o = this.options;
    try {
      o.signal?.throwIfAborted();
      await this.input.prepare?.();
      const qmpInput = this.input.qmp;
      const [xml, sourcePersistent, qmp] = await Promise.all([
        source.migratableXml(),
        source.isPersistent(),
        typeof qmpInput === 'function' ? qmpInput() : Promise.resolve(qmpInput),
      ]);
      this.qmp = qmp;
      if (Object.keys(o.qemuParameters).length > 0 && !qmp) {
        throw new MigrationError(`qemuParameters need a QMP route to ${source.name}, and there is none`, 'unsupported', {
          guestOnSource: true,
          hint: 'give the guest a second QMP monitor, or drop qemuParameters',
        });
      }
      const persistent = o.persistent ?? sourcePersistent;
      const plan = await planDestinationXml(xml, this.target, o.destinationQmpSocket);
      await this.checkQemuParameters();
      const call = buildMigrationCall(o, {
        destinationIsLocal: isLocalUri(this.target.uri),
        persistent,
        destinationXml: plan.xml,
        persistentXml: plan.xml,
      });

      await this.listen();
      if (o.signal) {
        const onAbort = () => void this.abort().catch(() => undefined);
        o.signal.addEventListener('abort', onAbort, { once: true });
        this.cleanups.push(() => o.signal?.removeEventListener('abort', onAbort));
      }
      if (o.signal?.aborted || this.userAborted) throw new MigrationError(`migration of ${source.name} was aborted before it started`, 'aborted', { guestOnSource: true });
      if (o.maxDowntimeMs !== undefined) {
        // libvirt keeps parameters set before the migration (it overwrites only max-bandwidth), so set it now.
        await this.input.control.setMaxDowntime(o.maxDowntimeMs);
        this.downtimeLimitMs = o.maxDowntimeMs;
      }
      this.watchdog.start();
      if (o.timeoutMs > 0) this.armHardTimeout(o.timeoutMs);
      this.schedulePoll();

      this.migrateCallStarted = true;
      try {
        // The native deadline is only a backstop: the hard timeout aborts the job first.
        await source.migrateToUri3(this.target.uri, call, o.timeoutMs > 0 ? o.timeoutMs + 30_000 : 0);
      } catch (err) {
        throw await this.failure(err);
      }
      this.settled = true;
      this.watchdog.stop();
      await this.waitForCompletedStats();
      if (this.completedStats) this.tracker.jobCompleted(this.completedStats);
      this.tracker.end('completed');
      const p = this.tracker.current;
      const raw = this.completedStats;
      const num = (k: string) => (raw && (typeof raw[k] === 'number' || typeof raw[k] === 'bigint') ? Number(raw[k]) : undefined);
      return {
        name: source.name,
        destinationUri: this.target.uri,
        destinationQmpSocket: plan.destinationSocket,
        durationMs: Math.round(performance.now() - this.startedAt),
        persistent,
        stats: {
          passes: num('memory_iteration') ?? p.pass,
          transferredBytes: num('memory_processed') ?? p.transferredBytes,
          totalBytes: num('memory_total') ?? p.totalBytes,
          downtimeMs: num('downtime'),
          jobTimeMs: num('time_elapsed'),
          raw,
        },
        watchdog: { state: this.watchdog.current, pausedGuest: this.watchdog.pausedGuest, downtimeLimitMs: this.downtimeLimitMs },
      };
    } catch (err) {
      this.settled = true;
      this.watchdog.stop();
      const error = err instanceof MigrationError || err instanceof InvalidArgumentError ? err : await this.failure(err);
      this.tracker.end(error instanceof MigrationError && (error.reason === 'aborted' || error.reason === 'deadline') ? 'cancelled' : 'failed');
      throw error;
    } finally {
      this.settled = true;
      if (this.pollTimer) clearTimeout(this.pollTimer);
      for (const c of this.cleanups.reverse()) {
        try {
          await c();
        } catch {
          // cleanup is best effort; the result is what matters
        }
      }
      if (this.input.ownsControl) await this.input.control.close().catch(() => undefined);
      await this.input.source.close?.().catch(() => undefined);
      if (this.input.ownsQmp) await this.qmp?.close?.().catch(() => undefined);
    }
  }

  /** The user's abort (or the AbortSignal's). */
  async abort(): Promise<void> {
    if (this.settled) return;
    this.userAborted = true;
    if (!this.migrateCallStarted) return; // execute() sees userAborted before starting
    await this.watchdog.abort();
  }

  /** Subscribes to libvirt's and QEMU's events; both feed the tracker. */
  private async listen(): Promise<void> {
    const unsubscribe = await this.input.control.subscribe((e) => this.onLibvirtEvent(e));
    this.cleanups.push(unsubscribe);
    const qmp = this.qmp;
    if (qmp) {
      const off = qmp.on('event', (e) => this.onQmpEvent(e.event, e.data));
      this.cleanups.push(off);
    }
  }

  private onLibvirtEvent(e: LibvirtMigrationEvent): void {
    switch (e.kind) {
      case 'iteration':
        this.tracker.passStarted(e.iteration, 'iteration');
        break;
      case 'job-completed':
        this.completedStats = e.stats;
        this.completedWaiter?.();
        break;
      case 'lifecycle':
        // libvirt reports our own pause during a migration as suspended/migrated too: not a switch-over.
        if (e.event === 'suspended' && e.detail === 'migrated' && !this.pauseRequested) this.tracker.switchover();
        else if (e.event === 'suspended' && (e.detail === 'paused' || this.pauseRequested)) this.tracker.guestPaused(true);
        else if (e.event === 'resumed') this.tracker.guestPaused(false);
        break;
    }
  }

  private onQmpEvent(name: string, raw: unknown): void {
    if (this.settled) return;
    const data = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : undefined;
    if (name === 'MIGRATION' && typeof data?.status === 'string') {
      this.tracker.migrationStatus(data.status);
      if (data.status === 'setup' && !this.sawSetup) {
        this.sawSetup = true;
        void this.applyQemuParameters();
      }
    } else if (name === 'MIGRATION_PASS' && typeof data?.pass === 'number') {
      this.tracker.passStarted(data.pass, 'pass');
    }
  }

  /** Names the running QEMU does not know are refused before anything starts. */
  private async checkQemuParameters(): Promise<void> {
    const names = Object.keys(this.options.qemuParameters);
    const qmp = this.qmp;
    if (names.length === 0 || !qmp) return;
    let known: (name: string) => Promise<boolean>;
    if (qmp.supports) {
      const supports = qmp.supports.bind(qmp);
      known = (name) => supports('migrate-set-parameters', name);
    } else {
      const current = (await qmp.execute('query-migrate-parameters')) as Record<string, unknown>;
      known = (name) => Promise.resolve(name in current);
    }
    const unknown: string[] = [];
    for (const name of names) if (!(await known(name))) unknown.push(name);
    if (unknown.length > 0) {
      throw new MigrationError(
        `this QEMU does not support the migration parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')}`,
        'unsupported',
        { guestOnSource: true, hint: 'check the name against query-migrate-parameters on this QEMU, or drop it; nothing was started' },
      );
    }
  }

  /**
   * Right after QEMU's MIGRATION setup: libvirt has set its own parameters by then (it overwrites
   * max-bandwidth at the start), and migrate-set-parameters takes effect at once during a migration.
   */
  private async applyQemuParameters(): Promise<void> {
    const params: Record<string, QemuParameterValue> = this.options.qemuParameters;
    const qmp = this.qmp;
    if (!qmp || Object.keys(params).length === 0) return;
    try {
      await qmp.execute('migrate-set-parameters', params, { timeoutMs: 10_000 });
    } catch (err) {
      if (this.settled) return;
      const msg = err instanceof Error ? err.message : String(err);
      this.qemuParamFailure = new MigrationError(`QEMU refused the migration parameters ${JSON.stringify(params)}: ${msg}`, 'unsupported', { cause: err });
      await this.watchdog.abort().catch(() => undefined);
    }
  }

  private async abortJob(): Promise<void> {
    // Before libvirt's job exists (destination still preparing), virDomainAbortJob fails with "no job":
    // keep asking until it lands or the migration settles.
    for (;;) {
      if (this.settled) return;
      try {
        await this.input.control.abortJob();
        return;
      } catch (err) {
        if (this.settled) return;
        if (!/no job|not active|no .*job is active|operation is not valid/i.test(String((err as Error).message))) throw err;
      }
      await new Promise((r) => setTimeout(r, ABORT_RETRY_MS));
    }
  }

  private async pauseGuest(): Promise<void> {
    this.pauseRequested = true;
    await this.input.control.suspend();
    this.tracker.guestPaused(true);
  }

  private async setDowntimeLimit(ms: number): Promise<void> {
    const qmp = this.qmp;
    if (qmp) await qmp.execute('migrate-set-parameters', { 'downtime-limit': ms }, { timeoutMs: 10_000 });
    else await this.input.control.setMaxDowntime(ms);
    this.downtimeLimitMs = ms;
  }

  private armHardTimeout(ms: number): void {
    const timer = setTimeout(() => {
      this.timedOut = true;
      void this.watchdog.abort().catch(() => undefined);
    }, ms);
    this.cleanups.push(() => clearTimeout(timer));
  }

  /**
   * Reads job statistics while someone watches progress: QEMU's query-migrate when there is a QMP
   * route and QEMU's migration has started (earlier it still shows the last migration's outcome),
   * otherwise libvirt's job stats on the control connection. Never more often than the interval,
   * and never two reads at once.
   */
  private schedulePoll(): void {
    if (this.settled) return;
    this.pollTimer = setTimeout(() => void this.poll(), this.options.progressIntervalMs);
  }

  private async poll(): Promise<void> {
    if (this.settled || this.polling) return;
    if (this.tracker.hasSubscribers) {
      this.polling = true;
      try {
        if (this.qmp && this.sawSetup) {
          const info = (await this.qmp.execute('query-migrate', undefined, { timeoutMs: 5000 })) as QueryMigrateInfo;
          if (!this.settled) this.tracker.queryMigrate(info);
        } else {
          const stats = await this.input.control.jobStats();
          if (!this.settled) this.tracker.jobStats(stats);
        }
      } catch {
        // A failed read is not a failed migration: the next tick tries again.
      } finally {
        this.polling = false;
      }
    }
    this.schedulePoll();
  }

  private async waitForCompletedStats(): Promise<void> {
    if (this.completedStats) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, JOB_COMPLETED_GRACE_MS);
      this.completedWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Builds the error for a failed migration call, and makes sure the guest runs on the source. */
  private async failure(err: unknown): Promise<MigrationError> {
    this.settled = true;
    this.watchdog.stop();
    const destination = this.target.uri;
    let error: MigrationError;
    if (this.qemuParamFailure) {
      error = this.qemuParamFailure;
    } else if (this.timedOut || this.watchdog.firedAbort) {
      const why = this.timedOut ? `the ${this.options.timeoutMs} ms timeout` : `the watchdog's ${this.options.watchdog?.deadlineMs} ms deadline`;
      error = new MigrationError(`migration of ${this.input.source.name} to ${destination} was aborted: it had not finished by ${why}`, 'deadline', { cause: err });
    } else if (this.userAborted) {
      error = new MigrationError(`migration of ${this.input.source.name} to ${destination} was aborted`, 'aborted', { cause: err });
    } else if (err instanceof MigrationError) {
      error = err;
    } else if (isErrorLike(err)) {
      error = classifyMigrationFailure(err, { destination });
    } else {
      error = new MigrationError(`migration of ${this.input.source.name} to ${destination} failed: ${String(err)}`, 'failed', { cause: err });
    }
    error.guestOnSource = await this.ensureGuestOnSource();
    return error;
  }

  /** After a failure: resume the guest if the watchdog paused it, and report whether it is there. */
  private async ensureGuestOnSource(): Promise<boolean> {
    const control = this.input.control;
    try {
      let state = await control.state();
      if (state === 'paused' && this.watchdog.pausedGuest) {
        await control.resume();
        this.tracker.guestPaused(false);
        state = await control.state();
      }
      return state === 'running' || state === 'paused';
    } catch {
      return false;
    }
  }
}

function isErrorLike(err: unknown): err is LibvirtErrorLike {
  return err instanceof Error || (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string');
}
