/**
 * A connection's lanes: several libvirt connections to one URI, each with its own executor thread. Calls
 * run in parallel on different lanes, never two on one libvirt connection (libvirt 9.0 can leave calls
 * stuck, then crash, when keepalive drops a connection with several RPCs in flight), and a call stuck on
 * a hung QEMU holds one lane while the others go on serving.
 *
 * The pool only schedules: which lane is free, who waits for which one, when to open another. Opening,
 * closing and the handles that live on a lane belong to the connection (connection-core.ts).
 */
import type { ConnectPtr } from '../../native/libvirt.js';
import type { Executor } from './executor.js';

/** One libvirt connection and the worker thread that runs its calls, one at a time. */
export class Lane {
  /** Set while a call (or an event registration) runs on this lane. */
  busy = false;
  /** Out of service: its call missed a deadline, or the daemon went away. */
  retired = false;
  /** The connection's reconnection count when this lane opened. */
  generation = 0;
  /** Pointers looked up on this lane for objects another lane handed out (freed when it closes). */
  readonly copies = new Map<bigint, string>();

  constructor(
    readonly executor: Executor,
    readonly conn: ConnectPtr,
    /** The connection's socket (null for in-process drivers such as test:///). */
    readonly fd: number | null,
    /** The close callback's opaque value: says which lane's connection dropped. */
    readonly connId: number,
  ) {}
}

/** A call's need: a given lane (the objects it names live there), the primary (event registrations), or any. */
export type LaneWant = Lane | 'primary' | 'any';

interface Waiter {
  want: LaneWant;
  resolve: (lane: Lane) => void;
  reject: (err: unknown) => void;
}

export interface LanePoolOptions {
  /** Most lanes open at once (1 = every call on one connection, in order). */
  max: number;
  /** Opens one more lane (a new libvirt connection on a new worker). */
  open: () => Promise<Lane>;
  /** A lane could not be opened; the calls waiting are served by the lanes that exist. */
  onOpenFailed: (err: unknown) => void;
  /** The error for a caller that needs a lane that was retired (its objects must be looked up again). */
  laneGone: (lane: Lane) => unknown;
}

export class LanePool {
  private active: Lane[] = [];
  private current: Lane | undefined;
  private waiters: Waiter[] = [];
  private opening = 0;

  constructor(private readonly options: LanePoolOptions) {}

  /** The lane that carries event registrations and the connection's identity (its pointer). */
  get primary(): Lane | undefined {
    return this.current;
  }

  get lanes(): readonly Lane[] {
    return this.active;
  }

  /** Calls waiting for a lane. */
  get queued(): number {
    return this.waiters.length;
  }

  /** A free lane at once (marked busy until release()), or undefined when the caller must wait in acquire(). */
  tryAcquire(want: LaneWant): Lane | undefined {
    if (this.waiters.length > 0 || (want instanceof Lane && want.retired)) return undefined;
    const lane = this.pick(want);
    if (lane) lane.busy = true;
    return lane;
  }

  /** Resolves with a free lane, marked busy until release(). */
  acquire(want: LaneWant): Promise<Lane> {
    if (want instanceof Lane && want.retired) return Promise.reject(this.options.laneGone(want));
    const free = this.tryAcquire(want);
    if (free) return Promise.resolve(free);
    return new Promise<Lane>((resolve, reject) => {
      this.waiters.push({ want, resolve, reject });
      // A free lane may suit this caller although an older one waits for another (busy) lane.
      this.dispatch();
      this.grow();
    });
  }

  release(lane: Lane): void {
    lane.busy = false;
    if (!lane.retired) this.dispatch();
  }

  /** Adds an opened lane (the first one becomes the primary). */
  add(lane: Lane): void {
    this.active.push(lane);
    this.current ??= lane;
    this.dispatch();
  }

  /**
   * Takes a lane out of service. Callers waiting for exactly that lane fail; the primary role passes to
   * another open lane (the caller re-registers the events there). Returns true if it was the primary.
   */
  retire(lane: Lane): boolean {
    lane.retired = true;
    this.active = this.active.filter((l) => l !== lane);
    const wasPrimary = this.current === lane;
    if (wasPrimary) this.current = this.active[0];
    this.waiters = this.waiters.filter((w) => {
      if (w.want !== lane) return true;
      w.reject(this.options.laneGone(lane));
      return false;
    });
    this.dispatch();
    this.grow();
    return wasPrimary;
  }

  /** Every lane out of service at once (the daemon went away); callers waiting for any lane keep waiting. */
  retireAll(): Lane[] {
    const gone = this.active;
    for (const lane of gone) lane.retired = true;
    this.active = [];
    this.current = undefined;
    this.waiters = this.waiters.filter((w) => {
      if (!(w.want instanceof Lane)) return true;
      w.reject(this.options.laneGone(w.want));
      return false;
    });
    return gone;
  }

  /** Fails every waiting caller (the connection is closed or lost for good). */
  failWaiters(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private pick(want: LaneWant): Lane | undefined {
    if (want instanceof Lane) return want.busy || want.retired ? undefined : want;
    if (want === 'primary') return this.current && !this.current.busy ? this.current : undefined;
    // Prefer a lane other than the primary: a call stuck there would interrupt the event registrations.
    let idlePrimary: Lane | undefined;
    for (const lane of this.active) {
      if (lane.busy) continue;
      if (lane !== this.current) return lane;
      idlePrimary = lane;
    }
    return idlePrimary;
  }

  /** Hands free lanes to the waiters, oldest first (a waiter for a busy lane does not hold up the others). */
  private dispatch(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      const lane = this.pick(w.want);
      if (!lane) {
        i++;
        continue;
      }
      lane.busy = true;
      this.waiters.splice(i, 1);
      w.resolve(lane);
    }
  }

  /** Opens another lane when a caller that can use any lane waits and the pool is below its size. */
  private grow(): void {
    if (this.active.length === 0 || this.active.length + this.opening >= this.options.max) return;
    if (!this.waiters.some((w) => w.want === 'any')) return;
    this.opening++;
    this.options.open().then(
      (lane) => {
        this.opening--;
        this.add(lane);
      },
      (err: unknown) => {
        this.opening--;
        this.options.onOpenFailed(err);
      },
    );
  }
}
