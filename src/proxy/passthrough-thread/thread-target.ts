/**
 * Inside the passthrough proxy's thread: the guest's passthrough made with this thread's own blocking
 * libvirt calls (no hand-off to another thread), on the connection reserved for it, and the guest's
 * QEMU events as the main thread forwards them. A PassthroughTransport runs on it unchanged.
 */
import { BoundedQueue } from '../../common/bounded-queue.js';
import { LibvirtError, LibvirtTimeoutError } from '../../libvirt/errors.js';
import type { ConnectionGap, QemuMonitorEvent } from '../../libvirt/events.js';
import type { ThreadCalls } from '../../libvirt/thread-calls.js';
import type { PassthroughEventSource, PassthroughTarget } from '../../hybrid/passthrough-transport.js';
import { WATCH_CALL_SEQ, WATCH_IN_CALL, WATCH_TIMED_OUT } from './protocol.js';

export class ThreadTarget implements PassthroughTarget {
  /** The guest's domain on the reserved connection; undefined while waiting for another connection. */
  private dom: bigint | undefined;
  /** Calls waiting for a connection (after the last one was lost). */
  private waiting: { go: () => void; fail: (err: Error) => void }[] = [];
  private closed = false;
  readonly events = threadEvents();

  constructor(
    private readonly calls: ThreadCalls,
    conn: bigint,
    private readonly uuid: string,
    readonly name: string,
    readonly uri: string,
    /** The watchdog's slots (protocol.ts), shared with the main thread. */
    private readonly shared: Int32Array,
    /** The deadline the main thread's watchdog enforces (for the timeout error's words); 0 = none. */
    private readonly timeoutMs: number,
    /** Asks the main thread for another connection. */
    private readonly needLane: () => void,
  ) {
    this.dom = calls.lookupDomain(conn, uuid);
  }

  qemuMonitorCommandText(command: Record<string, unknown>): Promise<string> {
    return this.run('virDomainQemuMonitorCommand', (dom) => this.calls.monitorCommand(dom, JSON.stringify(command)));
  }

  qemuMonitorCommandWithFiles(command: string, fds: number[]): Promise<{ result: string; outfiles: number[] }> {
    return this.run('virDomainQemuMonitorCommandWithFiles', (dom) => this.calls.monitorCommandWithFiles(dom, command, fds));
  }

  qemuMonitorEvents(): PassthroughEventSource {
    return this.events;
  }

  /** A new connection from the main thread: the calls that waited for one go on. */
  useConnection(conn: bigint): void {
    if (this.closed) return;
    try {
      this.dom = this.calls.lookupDomain(conn, this.uuid);
    } catch (err) {
      // the guest is gone, or the daemon again: those waiting hear why; later calls ask again
      for (const w of this.waiting.splice(0)) w.fail(err instanceof Error ? err : new Error(String(err)));
      this.needLane();
      return;
    }
    for (const w of this.waiting.splice(0)) w.go();
  }

  /** The main thread says the connection is gone. */
  lost(): void {
    this.drop();
  }

  /** Frees the domain; calls still waiting fail. */
  close(): void {
    this.closed = true;
    this.drop(false);
    for (const w of this.waiting.splice(0)) w.fail(LibvirtError.closed(undefined, undefined, 'the passthrough proxy closed'));
    this.events.end();
  }

  private run<T>(operation: string, call: (dom: bigint) => T): Promise<T> {
    const dom = this.dom;
    if (dom === undefined) {
      if (this.closed) return Promise.reject(LibvirtError.closed(operation));
      return new Promise<void>((go, fail) => this.waiting.push({ go, fail })).then(() => this.run(operation, call));
    }
    const seq = Atomics.add(this.shared, WATCH_CALL_SEQ, 1) + 1;
    Atomics.store(this.shared, WATCH_IN_CALL, 1);
    try {
      return Promise.resolve(call(dom));
    } catch (err) {
      if (Atomics.load(this.shared, WATCH_TIMED_OUT) === seq) {
        // the watchdog shut the connection down to end this call
        this.drop();
        return Promise.reject(new LibvirtTimeoutError(operation, this.timeoutMs));
      }
      if (err instanceof LibvirtError && err.isConnectionLost) this.drop();
      return Promise.reject(err);
    } finally {
      Atomics.store(this.shared, WATCH_IN_CALL, 0);
    }
  }

  /** The connection is unusable: free what this thread holds there and (unless closing) ask for another. */
  private drop(askAgain = true): void {
    const dom = this.dom;
    this.dom = undefined;
    if (dom !== undefined) {
      try {
        this.calls.freeDomain(dom);
      } catch {
        // a dead connection still frees the handle; nothing else to do
      }
      if (askAgain && !this.closed) this.needLane();
    }
  }
}

/**
 * The guest's QEMU events as the main thread forwards them: the queue the transport pumps, bounded
 * (events arrive while this thread waits inside libvirt; the transport drains them after), the oldest
 * dropped and counted in `dropped` when full.
 */
export type ThreadEvents = BoundedQueue<QemuMonitorEvent | ConnectionGap> & PassthroughEventSource;

export function threadEvents(capacity = 10_000): ThreadEvents {
  return Object.assign(new BoundedQueue<QemuMonitorEvent | ConnectionGap>({ capacity, overflow: 'drop-oldest', what: 'QEMU events' }), { ready: Promise.resolve() });
}
