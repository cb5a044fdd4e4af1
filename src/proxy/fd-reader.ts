/**
 * Reads proxy clients' sockets with recvmsg(2) so that file descriptors sent with a command
 * (SCM_RIGHTS) arrive with it; Node's own reads would drop them. One poll(2) at a time for all
 * clients runs on a koffi worker thread; readable sockets are then drained on the main thread.
 */
import { EAGAIN, EINTR, receiveWithFds, waitReadable } from '../../native/socket.js';

export interface FdReaderClient {
  /** Bytes and the fds that came with them. */
  data(chunk: Buffer, fds: number[]): void;
  /** The peer shut its side. */
  end(): void;
  /** recvmsg failed for good. */
  error(err: Error): void;
  /** Whether the client takes input now (backpressure). */
  readonly wantsInput: boolean;
}

/** How long one poll may wait: also how soon a newly added client starts being read. */
const POLL_MS = 20;
const READ_BYTES = 64 * 1024;

export class FdReader {
  private readonly clients = new Map<number, FdReaderClient>();
  private running = false;
  private stopped = false;

  add(fd: number, client: FdReaderClient): void {
    this.clients.set(fd, client);
    if (!this.running && !this.stopped) void this.loop();
  }

  remove(fd: number): void {
    this.clients.delete(fd);
  }

  stop(): void {
    this.stopped = true;
    this.clients.clear();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (!this.stopped && this.clients.size > 0) {
        const watched = [...this.clients].filter(([, c]) => c.wantsInput).map(([fd]) => fd);
        if (watched.length === 0) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          continue;
        }
        const ready = await waitReadable(watched, POLL_MS);
        for (const fd of ready) this.drain(fd);
      }
    } catch (err) {
      for (const c of [...this.clients.values()]) c.error(err instanceof Error ? err : new Error(String(err)));
      this.clients.clear();
    } finally {
      this.running = false;
    }
  }

  /** Reads what is there now (a bounded number of reads, so one busy client cannot starve the rest). */
  private drain(fd: number): void {
    for (let i = 0; i < 16; i++) {
      const client = this.clients.get(fd);
      if (!client || !client.wantsInput) return;
      const r = receiveWithFds(fd, READ_BYTES);
      if ('errno' in r) {
        if (r.errno === EAGAIN || r.errno === EINTR) return;
        this.clients.delete(fd);
        client.error(new Error(`recvmsg failed (errno ${r.errno})`));
        return;
      }
      if (r.data.length === 0 && r.fds.length === 0) {
        this.clients.delete(fd);
        client.end();
        return;
      }
      client.data(r.data, r.fds);
    }
  }
}
