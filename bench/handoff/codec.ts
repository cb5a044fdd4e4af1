/*
 * Benchmark-only: the shared-memory alternative to src/libvirt/executor.ts, kept so that
 * bench/handoff.bench.ts can measure it side by side with the shipped postMessage hand-off (see
 * docs/libvirt-handoff.md for the figures and why the library does not use it). Not part of the library.
 */
/**
 * Encoding of executor requests and replies for the shared-memory rings (exec-ring.ts). The values that
 * cross on almost every call (strings, numbers, pointer bigints, null, small arrays and plain objects,
 * byte arrays) have a hand-written binary form: for a short call, `v8.serialize` costs several times the
 * copy itself. Anything else (a Map, a Date…) makes the whole message fall back to `v8.serialize`, so what
 * arrives is what structured cloning (postMessage) would have delivered. Byte arrays arrive as plain
 * Uint8Array copies, as they did through postMessage.
 */
import { deserialize, serialize } from 'node:v8';

/**
 * Buffer's own UTF-8 slice: `toString('utf8', start, end)` reaches the same code after argument checks
 * that cost several times the copy of a 1 KB string.
 */
type SliceableBuffer = Buffer & { utf8Slice(start: number, end: number): string };

const enum Tag {
  Undefined,
  Null,
  False,
  True,
  Int32,
  Float64,
  BigInt64,
  BigUint64,
  String,
  Array,
  Object,
  Bytes,
}

/** First byte of a record: how the rest is encoded. */
export const enum Format {
  Native = 0,
  V8 = 1,
}

const MIN_BIGINT64 = -(2n ** 63n);
const LIMIT_BIGINT64 = 2n ** 63n;
const MAX_BIGUINT64 = 2n ** 64n - 1n;
const MAX_DEPTH = 64;

/** Thrown by the hand-written encoder for a value it has no form for: the message is sent with v8.serialize. */
class Unsupported extends Error {}
const unsupported = new Unsupported();

/** Encodes into one growing scratch buffer, reused for every message of its thread. */
export class Encoder {
  private buf = Buffer.allocUnsafe(4096);
  private pos = 0;

  /** The scratch buffer: after encode(), the message is its first `length` bytes (until the next encode). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Encodes `header` (an int32: the call id), then `first` and `second`; returns the length in bytes. */
  encode(header: number, first: unknown, second: unknown): number {
    this.pos = 0;
    try {
      this.ensure(5);
      this.buf[this.pos++] = Format.Native;
      this.buf.writeInt32LE(header, this.pos);
      this.pos += 4;
      this.value(first, 0);
      this.value(second, 0);
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      const blob = serialize([header, first, second]);
      this.pos = 0;
      this.ensure(1 + blob.length);
      this.buf[this.pos++] = Format.V8;
      blob.copy(this.buf, this.pos);
      this.pos += blob.length;
    }
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private tag(t: Tag): void {
    this.ensure(1);
    this.buf[this.pos++] = t;
  }

  private u32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4;
  }

  private value(v: unknown, depth: number): void {
    if (depth > MAX_DEPTH) throw unsupported;
    switch (typeof v) {
      case 'undefined':
        return this.tag(Tag.Undefined);
      case 'boolean':
        return this.tag(v ? Tag.True : Tag.False);
      case 'number':
        if ((v | 0) === v && !Object.is(v, -0)) {
          this.ensure(5);
          this.buf[this.pos++] = Tag.Int32;
          this.buf.writeInt32LE(v, this.pos);
          this.pos += 4;
        } else {
          this.ensure(9);
          this.buf[this.pos++] = Tag.Float64;
          this.buf.writeDoubleLE(v, this.pos);
          this.pos += 8;
        }
        return;
      case 'bigint':
        this.ensure(9);
        if (v >= MIN_BIGINT64 && v < LIMIT_BIGINT64) {
          this.buf[this.pos++] = Tag.BigInt64;
          this.buf.writeBigInt64LE(v, this.pos);
        } else if (v > 0n && v <= MAX_BIGUINT64) {
          this.buf[this.pos++] = Tag.BigUint64;
          this.buf.writeBigUInt64LE(v, this.pos);
        } else throw unsupported;
        this.pos += 8;
        return;
      case 'string': {
        // UTF-8 needs at most 3 bytes per UTF-16 unit.
        this.ensure(5 + v.length * 3);
        this.buf[this.pos] = Tag.String;
        const n = this.buf.write(v, this.pos + 5);
        this.buf.writeUInt32LE(n, this.pos + 1);
        this.pos += 5 + n;
        return;
      }
      case 'object': {
        if (v === null) return this.tag(Tag.Null);
        if (Array.isArray(v)) {
          this.tag(Tag.Array);
          this.u32(v.length);
          for (let i = 0; i < v.length; i++) this.value(v[i], depth + 1);
          return;
        }
        if (v instanceof Uint8Array) {
          this.tag(Tag.Bytes);
          this.u32(v.length);
          this.ensure(v.length);
          this.buf.set(v, this.pos);
          this.pos += v.length;
          return;
        }
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) throw unsupported;
        const keys = Object.keys(v);
        this.tag(Tag.Object);
        this.u32(keys.length);
        for (const k of keys) {
          this.value(k, depth + 1);
          this.value((v as Record<string, unknown>)[k], depth + 1);
        }
        return;
      }
      default:
        throw unsupported; // functions, symbols: structured cloning refuses them too (v8.serialize throws)
    }
  }
}

/**
 * Decodes one record of `encode(header, first, second)` from `buf[start, end)`: returns the header and
 * puts the two values in `out[0]` and `out[1]` (reused by the caller: no allocation per message).
 */
export function decode(buf: Buffer, start: number, end: number, out: unknown[]): number {
  if (buf[start] === Format.V8) {
    const [header, first, second] = deserialize(buf.subarray(start + 1, end)) as [number, unknown, unknown];
    out[0] = first;
    out[1] = second;
    return header;
  }
  const header = buf.readInt32LE(start + 1);
  reader.reset(buf, start + 5);
  out[0] = reader.value();
  out[1] = reader.value();
  return header;
}

class Reader {
  private buf = Buffer.alloc(0) as SliceableBuffer;
  private pos = 0;

  reset(buf: Buffer, pos: number): void {
    this.buf = buf as SliceableBuffer;
    this.pos = pos;
  }

  private u32(): number {
    const n = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return n;
  }

  value(): unknown {
    const buf = this.buf;
    const t = buf[this.pos++] as Tag;
    switch (t) {
      case Tag.Undefined:
        return undefined;
      case Tag.Null:
        return null;
      case Tag.False:
        return false;
      case Tag.True:
        return true;
      case Tag.Int32: {
        const v = buf.readInt32LE(this.pos);
        this.pos += 4;
        return v;
      }
      case Tag.Float64: {
        const v = buf.readDoubleLE(this.pos);
        this.pos += 8;
        return v;
      }
      case Tag.BigInt64: {
        const v = buf.readBigInt64LE(this.pos);
        this.pos += 8;
        return v;
      }
      case Tag.BigUint64: {
        const v = buf.readBigUInt64LE(this.pos);
        this.pos += 8;
        return v;
      }
      case Tag.String: {
        const n = this.u32();
        const s = buf.utf8Slice(this.pos, this.pos + n);
        this.pos += n;
        return s;
      }
      case Tag.Array: {
        const n = this.u32();
        const a = new Array<unknown>(n);
        for (let i = 0; i < n; i++) a[i] = this.value();
        return a;
      }
      case Tag.Object: {
        const n = this.u32();
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.value() as string;
          if (k === '__proto__') Object.defineProperty(o, k, { value: this.value(), enumerable: true, writable: true, configurable: true });
          else o[k] = this.value();
        }
        return o;
      }
      case Tag.Bytes: {
        const n = this.u32();
        const out = new Uint8Array(n);
        out.set(buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        return out;
      }
      default:
        throw new Error(`libvirt executor codec: unknown tag ${String(t)} at ${this.pos - 1}`);
    }
  }
}

/** One per thread: decoding is synchronous and not re-entrant. */
const reader = new Reader();
