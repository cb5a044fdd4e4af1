/*
 * Benchmark-only: the shared-memory alternative to src/libvirt/executor.ts, kept so that
 * bench/handoff.bench.ts can measure it side by side with the shipped postMessage hand-off (see
 * docs/libvirt-handoff.md for the figures and why the library does not use it). Not part of the library.
 */
/**
 * A single-producer, single-consumer ring of byte records in a SharedArrayBuffer: how an executor's
 * requests reach its worker thread and its replies come back, without a MessagePort per call. Records are
 * [int32 length][payload, padded to 4 bytes]; one never wraps around the end of the ring (a -1 length
 * tells the reader to skip to the start). The two positions live in the executor's control block and
 * count bytes for ever, wrapping at 2^32; the capacity is a power of two, so `position & mask` stays
 * right across the wrap.
 */

/** Length word of a record that is not there: the rest of the ring up to its end is unused. */
const SKIP = -1;
/** Length word of a record whose message travels on the side MessagePort (too big for the ring). */
const ON_PORT = -2;

export const enum Next {
  None,
  /** A record: its bytes are `bytes[start, end)` until release(). */
  Inline,
  /** The message is waiting on the side port (receiveMessageOnPort); release() after taking it. */
  OnPort,
}

export class ByteRing {
  /** The ring's bytes (a view of the shared memory). */
  readonly bytes: Buffer;
  private readonly words: Int32Array;
  private readonly mask: number;
  /** Where the record returned by next() lies in `bytes`. */
  start = 0;
  end = 0;
  private releaseTo = 0;

  constructor(
    sab: SharedArrayBuffer,
    private readonly ctl: Int32Array,
    private readonly writeSlot: number,
    private readonly readSlot: number,
    offset: number,
    private readonly capacity: number,
  ) {
    if (capacity & (capacity - 1) || capacity < 64) throw new Error('ring capacity must be a power of two ≥ 64');
    this.bytes = Buffer.from(sab, offset, capacity);
    this.words = new Int32Array(sab, offset, capacity / 4);
    this.mask = capacity - 1;
  }

  /** Records larger than this go by the side port, so that one big message never waits for the whole ring. */
  get maxInline(): number {
    return this.capacity / 4;
  }

  /** Producer: copies `source[0, length)` in as one record; false when there is no room for it now. */
  tryWrite(source: Buffer, length: number): boolean {
    return this.put(length, source);
  }

  /** Producer: a marker saying the next message is on the side port (posted before this is called). */
  tryWriteOnPort(): boolean {
    return this.put(ON_PORT, undefined);
  }

  /** Producer: whether a record of `length` payload bytes fits now. */
  hasRoom(length: number): boolean {
    const w = Atomics.load(this.ctl, this.writeSlot);
    const used = (w - Atomics.load(this.ctl, this.readSlot)) | 0;
    const need = 4 + ((length + 3) & ~3);
    const pos = w & this.mask;
    const skip = pos + need > this.capacity ? this.capacity - pos : 0;
    return used + skip + need <= this.capacity;
  }

  private put(length: number, source: Buffer | undefined): boolean {
    const w = Atomics.load(this.ctl, this.writeSlot);
    const used = (w - Atomics.load(this.ctl, this.readSlot)) | 0;
    const need = 4 + ((Math.max(length, 0) + 3) & ~3);
    let pos = w & this.mask;
    const skip = pos + need > this.capacity ? this.capacity - pos : 0;
    if (used + skip + need > this.capacity) return false;
    if (skip) {
      this.words[pos >> 2] = SKIP;
      pos = 0;
    }
    this.words[pos >> 2] = length;
    if (source) source.copy(this.bytes, pos + 4, 0, length);
    // Publishing the position is what makes the record visible (Atomics order the plain writes before it).
    Atomics.store(this.ctl, this.writeSlot, (w + skip + need) | 0);
    return true;
  }

  /** Consumer: the next record, if any (see Next). Call release() once it has been decoded. */
  next(): Next {
    let r = Atomics.load(this.ctl, this.readSlot);
    const w = Atomics.load(this.ctl, this.writeSlot);
    if (r === w) return Next.None;
    let pos = r & this.mask;
    let length = this.words[pos >> 2]!;
    if (length === SKIP) {
      r = (r + this.capacity - pos) | 0;
      pos = 0;
      length = this.words[0]!;
    }
    if (length === ON_PORT) {
      this.releaseTo = (r + 4) | 0;
      return Next.OnPort;
    }
    this.start = pos + 4;
    this.end = pos + 4 + length;
    this.releaseTo = (r + 4 + ((length + 3) & ~3)) | 0;
    return Next.Inline;
  }

  /** Consumer: gives the last record's space back to the producer. */
  release(): void {
    Atomics.store(this.ctl, this.readSlot, this.releaseTo);
  }

  /** Bytes written and not yet released. */
  get used(): number {
    return (Atomics.load(this.ctl, this.writeSlot) - Atomics.load(this.ctl, this.readSlot)) | 0;
  }
}
