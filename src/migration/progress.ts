import { BoundedQueue, type OverflowPolicy } from '../common/bounded-queue.js';

/**
 * Where a migration is. `preparing` is libvirt's part before QEMU starts sending (the destination
 * starts its QEMU); the rest are QEMU's MIGRATION statuses, with the three terminal ones last.
 */
export type MigrationPhase =
  | 'preparing'
  | 'setup'
  | 'active'
  | 'pre-switchover'
  | 'device'
  | 'completed'
  | 'cancelling'
  | 'cancelled'
  | 'failed';

/** What produced a progress snapshot. */
export type ProgressCause =
  | 'start'
  | 'job-stats'
  | 'query-migrate'
  | 'migration-event'
  | 'pass'
  | 'iteration'
  | 'job-completed'
  | 'guest-paused'
  | 'watchdog'
  | 'end';

/** One snapshot of a running migration, merged from libvirt's job stats and events and QEMU's own. */
export interface MigrationProgress {
  phase: MigrationPhase;
  /** RAM passes started so far (QMP MIGRATION_PASS, libvirt migration-iteration, memory_iteration). */
  pass: number;
  /** RAM bytes sent so far. */
  transferredBytes: number;
  /** RAM bytes still to send in this pass (0 before the first stats). */
  remainingBytes: number;
  /** Guest RAM size being migrated (0 until the transfer starts). */
  totalBytes: number;
  /** Current transfer rate in bytes/s. */
  bytesPerSecond: number;
  /** Pages the guest dirties per second (0 until QEMU has measured it, after the second pass). */
  dirtyPagesPerSecond: number;
  /** QEMU's estimate of the downtime if it switched over now; after completion, the real downtime. */
  expectedDowntimeMs: number | undefined;
  /** Since the migrate call started. */
  elapsedMs: number;
  /** The guest was paused on the source to let the migration finish (watchdog 'pause'). */
  guestPaused: boolean;
  /** The downtime limit the watchdog last set, if it raised it. */
  downtimeLimitMs: number | undefined;
  cause: ProgressCause;
}

export interface ProgressSubscribeOptions {
  /** Queue capacity (default 64). */
  bufferSize?: number;
  /** Default 'drop-oldest': a slow reader loses old snapshots, never the migration. */
  overflow?: OverflowPolicy;
}

const ORDER: Record<MigrationPhase, number> = {
  preparing: 0,
  setup: 1,
  active: 2,
  'pre-switchover': 3,
  device: 4,
  cancelling: 5,
  completed: 6,
  cancelled: 6,
  failed: 6,
};
const TERMINAL = new Set<MigrationPhase>(['completed', 'cancelled', 'failed']);

/** Libvirt's job stats / job-completed fields (VIR_DOMAIN_JOB_*), as decoded typed parameters. */
export type JobStatsRecord = Readonly<Record<string, number | bigint | string | boolean>>;

/**
 * Merges every progress source into one monotonic view and fans snapshots out to subscribers. Sources
 * disagree in timing (libvirt polls lag QEMU's events), so counters only move forward and a phase
 * never goes back, except into cancelling/failed.
 */
export class ProgressTracker {
  private state: Omit<MigrationProgress, 'elapsedMs' | 'cause'> = {
    phase: 'preparing',
    pass: 0,
    transferredBytes: 0,
    remainingBytes: 0,
    totalBytes: 0,
    bytesPerSecond: 0,
    dirtyPagesPerSecond: 0,
    expectedDowntimeMs: undefined,
    guestPaused: false,
    downtimeLimitMs: undefined,
  };
  private last: MigrationProgress;
  private readonly subscribers = new Set<BoundedQueue<MigrationProgress>>();
  private readonly listeners = new Set<(p: MigrationProgress) => void>();
  private ended = false;
  private finalPhase: MigrationPhase | undefined;
  private readonly startedAt: number;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.startedAt = now();
    this.last = { ...this.state, elapsedMs: 0, cause: 'start' };
  }

  /** The latest snapshot. */
  get current(): MigrationProgress {
    return this.last;
  }

  get phase(): MigrationPhase {
    return this.state.phase;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Whether anyone reads progress (the engine polls job stats only then). */
  get hasSubscribers(): boolean {
    return this.subscribers.size > 0 || this.listeners.size > 0;
  }

  /** An async iterable of snapshots, starting with the current one. */
  subscribe(options: ProgressSubscribeOptions = {}): AsyncIterableIterator<MigrationProgress> {
    const queue: BoundedQueue<MigrationProgress> = new BoundedQueue<MigrationProgress>({
      capacity: options.bufferSize ?? 64,
      overflow: options.overflow ?? 'drop-oldest',
      what: 'migration progress snapshots',
      onClose: () => this.subscribers.delete(queue),
    });
    queue.push(this.last);
    if (this.ended) queue.end();
    else this.subscribers.add(queue);
    return queue;
  }

  /** A synchronous listener (e.g. a progress bar); returns the unsubscribe function. */
  onProgress(listener: (p: MigrationProgress) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** QMP `MIGRATION` {status}. */
  migrationStatus(status: string): void {
    const phase = toPhase(status);
    if (phase) this.update({ phase }, 'migration-event');
  }

  /** QMP `MIGRATION_PASS` {pass} or libvirt `migration-iteration` {iteration}: the same count (1:1). */
  passStarted(pass: number, cause: 'pass' | 'iteration'): void {
    this.update({ pass, phase: this.state.phase === 'preparing' || this.state.phase === 'setup' ? 'active' : undefined }, cause);
  }

  /** libvirt lifecycle Suspended/Migrated: the source stopped for the switch-over. */
  switchover(): void {
    this.update({ phase: 'device' }, 'migration-event');
  }

  guestPaused(paused: boolean): void {
    this.update({ guestPaused: paused }, 'guest-paused');
  }

  downtimeLimit(ms: number): void {
    this.update({ downtimeLimitMs: ms }, 'watchdog');
  }

  /** virDomainGetJobStats during the migration (type 2 = unbounded). */
  jobStats(stats: JobStatsRecord): void {
    const n = (k: string) => num(stats[k]);
    const total = n('memory_total');
    if (total === undefined || total === 0) return; // still preparing: libvirt reports zeros
    this.update(
      {
        transferredBytes: n('memory_processed'),
        remainingBytes: n('memory_remaining'),
        totalBytes: total,
        bytesPerSecond: n('memory_bps'),
        dirtyPagesPerSecond: n('memory_dirty_rate'),
        pass: n('memory_iteration'),
        expectedDowntimeMs: n('downtime'),
        phase: this.state.phase === 'preparing' || this.state.phase === 'setup' ? 'active' : undefined,
      },
      'job-stats',
    );
  }

  /** libvirt `job-completed`: the final statistics; downtime is the real one. */
  jobCompleted(stats: JobStatsRecord): void {
    const n = (k: string) => num(stats[k]);
    this.update(
      {
        transferredBytes: n('memory_processed'),
        remainingBytes: 0,
        totalBytes: n('memory_total'),
        bytesPerSecond: n('memory_bps'),
        dirtyPagesPerSecond: n('memory_dirty_rate'),
        pass: n('memory_iteration'),
        expectedDowntimeMs: n('downtime'),
        phase: 'completed',
      },
      'job-completed',
    );
  }

  /** QMP `query-migrate` on the source. */
  queryMigrate(info: QueryMigrateInfo): void {
    const ram = info.ram;
    const phase = info.status ? toPhase(info.status) : undefined;
    this.update(
      {
        phase,
        transferredBytes: ram?.transferred,
        remainingBytes: ram?.remaining,
        totalBytes: ram?.total,
        // QEMU's mbps is megabits per second
        bytesPerSecond: ram?.mbps === undefined ? undefined : Math.round((ram.mbps * 1e6) / 8),
        dirtyPagesPerSecond: ram?.['dirty-pages-rate'],
        pass: ram?.['dirty-sync-count'],
        expectedDowntimeMs: phase === 'completed' ? info.downtime : info['expected-downtime'],
      },
      'query-migrate',
    );
  }

  /** The migrate call settled: a final snapshot, then every iteration ends. */
  end(phase: 'completed' | 'cancelled' | 'failed'): void {
    if (this.ended) return;
    // The call's outcome is authoritative: when we cancel, QEMU may first report 'failed' (the destination
    // went away before its own 'cancelled'); the last snapshot still says how the migration ended.
    this.finalPhase = phase;
    this.update({ phase }, 'end');
    this.ended = true;
    for (const q of this.subscribers) q.end();
    this.subscribers.clear();
    this.listeners.clear();
  }

  private update(patch: Partial<{ [K in keyof MigrationProgress]: MigrationProgress[K] | undefined }>, cause: ProgressCause): void {
    if (this.ended) return;
    const s = this.state;
    let changed = false;
    const set = <K extends keyof typeof s>(k: K, v: (typeof s)[K]) => {
      if (s[k] !== v) {
        s[k] = v;
        changed = true;
      }
    };
    if (patch.phase !== undefined && patch.phase !== s.phase && (patch.phase === this.finalPhase || canMove(s.phase, patch.phase))) set('phase', patch.phase);
    // counters that only grow
    for (const k of ['pass', 'transferredBytes', 'totalBytes'] as const) {
      const v = patch[k];
      if (v !== undefined && v > s[k]) set(k, v);
    }
    // gauges: latest value wins
    for (const k of ['remainingBytes', 'bytesPerSecond', 'dirtyPagesPerSecond'] as const) {
      const v = patch[k];
      if (v !== undefined) set(k, v);
    }
    if (patch.expectedDowntimeMs !== undefined) set('expectedDowntimeMs', patch.expectedDowntimeMs);
    if (patch.guestPaused !== undefined) set('guestPaused', patch.guestPaused);
    if (patch.downtimeLimitMs !== undefined) set('downtimeLimitMs', patch.downtimeLimitMs);
    if (!changed) return;
    this.last = { ...s, elapsedMs: Math.round(this.now() - this.startedAt), cause };
    for (const q of this.subscribers) q.push(this.last);
    for (const l of this.listeners) l(this.last);
  }
}

/** The part of QMP `query-migrate`'s reply progress uses. */
export interface QueryMigrateInfo {
  status?: string;
  'expected-downtime'?: number;
  downtime?: number;
  'total-time'?: number;
  ram?: {
    transferred?: number;
    remaining?: number;
    total?: number;
    mbps?: number;
    'dirty-pages-rate'?: number;
    'dirty-sync-count'?: number;
  };
}

function canMove(from: MigrationPhase, to: MigrationPhase): boolean {
  if (TERMINAL.has(from)) return false;
  if (to === 'cancelling' || to === 'failed' || to === 'cancelled') return true;
  if (from === 'cancelling') return false;
  return ORDER[to] > ORDER[from];
}

function toPhase(status: string): MigrationPhase | undefined {
  switch (status) {
    case 'setup':
    case 'active':
    case 'pre-switchover':
    case 'device':
    case 'completed':
    case 'cancelling':
    case 'cancelled':
    case 'failed':
      return status;
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
    case 'wait-unplug':
      return 'active';
    default:
      return undefined; // 'none' and statuses a newer QEMU may add
  }
}

function num(v: number | bigint | string | boolean | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}
