/**
 * The hand-written half of Stream: a libvirt stream (console, screenshot, volume upload/download) as a
 * Node stream. Every read and write is one call on the connection's worker; the stream must be
 * non-blocking (`connection.streamNew(VIR_STREAM_NONBLOCK)`) so that waiting for data never holds the
 * connection's worker: "nothing yet" comes back at once and is retried after `pollMs`.
 */
import { Duplex, Readable, Writable } from 'node:stream';
import { InvalidArgumentError } from '../common/errors.js';
import { LibvirtObject } from './object.js';

export interface StreamIoOptions {
  /** Bytes asked for per read (default 64 KiB). */
  chunkSize?: number;
  /** How long to wait before asking again when libvirt has no data yet (default 20 ms). */
  pollMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function checkOptions(o: StreamIoOptions): { chunkSize: number; pollMs: number } {
  const chunkSize = o.chunkSize ?? 64 * 1024;
  const pollMs = o.pollMs ?? 20;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 16 * 1024 * 1024) {
    throw new InvalidArgumentError(`chunkSize must be 1 … 16 MiB, got ${String(o.chunkSize)}`);
  }
  if (!Number.isFinite(pollMs) || pollMs < 1) throw new InvalidArgumentError(`pollMs must be ≥ 1, got ${String(o.pollMs)}`);
  return { chunkSize, pollMs };
}

export class StreamCore extends LibvirtObject {
  /** Next chunk: bytes, an empty array at end of stream, or null when nothing has arrived yet. */
  private recvChunk(size: number): Promise<Uint8Array | null> {
    return this.context.call('virStreamRecv', 'u', [this.pointer, size]) as Promise<Uint8Array | null>;
  }

  /** Sends all of `bytes`, waiting while libvirt's buffer is full. */
  private async sendAll(bytes: Uint8Array, pollMs: number): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const sent = (await this.context.call('virStreamSend', 'B', [this.pointer, Buffer.from(bytes.subarray(off))])) as number | null;
      if (sent === null) await sleep(pollMs);
      else off += sent;
    }
  }

  private async end(error?: unknown): Promise<void> {
    if (error) await this.context.call('virStreamAbort', '', [this.pointer]).catch(() => undefined);
    else await this.context.call('virStreamFinish', '', [this.pointer]);
  }

  /** What libvirt sends (a download, a screenshot, console output), until it ends the stream. */
  toReadable(options: StreamIoOptions = {}): Readable {
    const { chunkSize, pollMs } = checkOptions(options);
    let ended = false;
    const next = async (): Promise<Buffer | null> => {
      for (;;) {
        const chunk = await this.recvChunk(chunkSize);
        if (chunk === null) {
          await sleep(pollMs);
          continue;
        }
        if (chunk.length > 0) return Buffer.from(chunk);
        ended = true;
        await this.end();
        return null;
      }
    };
    const readable: Readable = new Readable({
      read: () => {
        next().then(
          (chunk) => readable.push(chunk),
          (err: unknown) => readable.destroy(err as Error),
        );
      },
      destroy: (err, cb) => {
        if (ended) cb(err);
        else this.end(err ?? new Error('closed early')).then(() => cb(err), () => cb(err));
      },
    });
    return readable;
  }

  /** A sink into libvirt (an upload); finishing it finishes the libvirt stream. */
  toWritable(options: StreamIoOptions = {}): Writable {
    const { pollMs } = checkOptions(options);
    let finished = false;
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.sendAll(chunk, pollMs).then(() => cb(), cb);
      },
      final: (cb) => {
        finished = true;
        this.end().then(() => cb(), cb);
      },
      destroy: (err, cb) => {
        if (finished) cb(err);
        else this.end(err ?? new Error('closed early')).then(() => cb(err), () => cb(err));
      },
    });
  }

  /** Both ways at once (a serial console). */
  toDuplex(options: StreamIoOptions = {}): Duplex {
    const readable = this.toReadable(options);
    const writable = this.toWritable(options);
    return Duplex.from({ readable, writable });
  }
}
