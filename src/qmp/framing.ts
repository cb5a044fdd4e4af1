import { MessageTooLargeError, QmpProtocolError } from './errors.js';
import type { QmpMessage } from './transport.js';

export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

export interface FramerSink {
  message(msg: QmpMessage): void;
  protocolError(err: Error): void;
  /** Optional: offered each line (without its line end) before it is parsed; true takes it, unparsed. */
  takeLine?(line: string): boolean;
}

const LF = 0x0a;
const SCRATCH_MAX = 1024 * 1024;
const CR = 0x0d;
/** How much of a skipped message's end is kept to read its id (QEMU writes `"id": …` last). */
const TAIL_BYTES = 256;
/** `"id": <string or number>}` closing the line: the reply's own id, not one nested in its return value. */
const TRAILING_ID = /"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*\}\s*$/;

/** The id of a reply, read from the last bytes of its line; undefined when the line does not end with one. */
function trailingId(tail: Buffer): string | undefined {
  const m = TRAILING_ID.exec(tail.toString('latin1'));
  if (!m) return undefined;
  try {
    const id: unknown = JSON.parse(m[1]!);
    return typeof id === 'string' ? id : String(id);
  } catch {
    return undefined;
  }
}

/**
 * Splits a byte stream into newline-terminated JSON messages (LF or CRLF). Works on Buffers and decodes
 * only complete lines, so a UTF-8 sequence split across chunks is never mangled. A message longer than
 * `maxMessageBytes` is skipped up to its newline and reported as MessageTooLargeError: the stream stays
 * in sync and memory stays bounded.
 */
export class MessageFramer {
  /** Pieces of the current, not yet terminated line (usually empty: most messages fit one chunk). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of an oversized message being skipped, or -1 when not skipping. */
  private skipped = -1;
  /** The last bytes of the message being skipped (for its id). */
  private skipTail: Buffer = Buffer.alloc(0);
  private scratch: Buffer | undefined;

  constructor(
    private readonly sink: FramerSink,
    readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
    /** Set when the producer overwrites a chunk after push() returns (Node sockets do not). */
    private readonly reusesBuffers = false,
  ) {
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 2) {
      throw new RangeError(`maxMessageBytes must be an integer ≥ 2, got ${String(maxMessageBytes)}`);
    }
  }

  push(chunk: Buffer): void {
    let start = 0;
    const end = chunk.length;
    while (start < end) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) {
        this.keep(chunk, start, end);
        return;
      }
      if (this.skipped >= 0) {
        const total = this.skipped + (nl - start);
        this.skipped = -1;
        this.tooLarge(total, [this.skipTail, chunk.subarray(start, nl)]);
      } else if (this.pendingBytes === 0) {
        this.line(chunk, start, nl);
      } else {
        if (this.pendingBytes + (nl - start) > this.maxMessageBytes + 1) {
          const total = this.pendingBytes + (nl - start);
          const pieces = [...this.pending, chunk.subarray(start, nl)];
          this.reset();
          this.tooLarge(total, pieces);
        } else {
          this.pending.push(chunk.subarray(start, nl));
          const whole = this.join(this.pendingBytes + (nl - start));
          this.reset();
          this.line(whole, 0, whole.length);
        }
      }
      start = nl + 1;
    }
  }

  /** Bytes buffered for an unterminated message (for tests and diagnostics). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  private keep(chunk: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.skipped >= 0) {
      this.skipped += n;
      this.skipTail = lastBytes([this.skipTail, chunk.subarray(start, end)]);
      return;
    }
    // +1: a trailing CR of a CRLF terminator does not count against the limit.
    if (this.pendingBytes + n > this.maxMessageBytes + 1) {
      this.skipped = this.pendingBytes + n;
      this.skipTail = lastBytes([...this.pending, chunk.subarray(start, end)]);
      this.reset();
      return;
    }
    // A small tail of a big chunk is copied so that it does not pin the whole chunk in memory (and
    // callers may reuse their buffers); a big piece is kept as is, since Buffer.concat copies it anyway.
    const piece = chunk.subarray(start, end);
    this.pending.push(n * 2 < chunk.length || this.reusesBuffers ? Buffer.from(piece) : piece);
    this.pendingBytes += n;
  }

  /**
   * Joins the pending pieces. Messages up to SCRATCH_MAX bytes are assembled in one reused buffer (the
   * decoded string is a copy, so reuse is safe): a big reply arriving in several socket reads then
   * costs no fresh allocation beyond its string.
   */
  private join(total: number): Buffer {
    if (total > SCRATCH_MAX) return Buffer.concat(this.pending, total);
    if (!this.scratch || this.scratch.length < total) {
      let size = 64 * 1024;
      while (size < total) size *= 2;
      this.scratch = Buffer.allocUnsafeSlow(size);
    }
    let offset = 0;
    for (const piece of this.pending) offset += piece.copy(this.scratch, offset);
    return this.scratch.subarray(0, total);
  }

  private reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Reports a skipped message, with its id when its last bytes (`pieces`, in order) end with one. */
  private tooLarge(total: number, pieces: Buffer[]): void {
    this.skipTail = Buffer.alloc(0);
    this.sink.protocolError(new MessageTooLargeError(this.maxMessageBytes, total, trailingId(lastBytes(pieces))));
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxMessageBytes) {
      this.tooLarge(end - start, [buf.subarray(start, end)]);
      return;
    }
    const text = buf.toString('utf8', start, end);
    if (this.sink.takeLine?.(text)) return;
    if (text.trim() === '') return; // blank lines are legal padding
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      this.sink.protocolError(
        new QmpProtocolError(`received a line that is not JSON: ${preview(text)}`, { cause: err }),
      );
      return;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      this.sink.protocolError(new QmpProtocolError(`received JSON that is not an object: ${preview(text)}`));
      return;
    }
    this.sink.message(parsed as QmpMessage);
  }
}

/** A copy of the last TAIL_BYTES bytes of the pieces, in order. */
function lastBytes(pieces: Buffer[]): Buffer {
  const out: Buffer[] = [];
  let need = TAIL_BYTES;
  for (let i = pieces.length - 1; i >= 0 && need > 0; i--) {
    const p = pieces[i]!;
    const take = p.subarray(Math.max(0, p.length - need));
    out.unshift(take);
    need -= take.length;
  }
  return Buffer.concat(out);
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

const RETURN_HEAD = '{"return": ';
const ID_TAIL = ', "id": "';

/** A reply line in QEMU's layout, read without parsing it (see replyLineParts). */
export interface ReplyLineParts {
  /** The id's characters between its quotes, as written (the caller's own ids need no escapes). */
  readonly id: string;
  /** The `return` value's text. */
  readonly returnText: string;
  /** Where `, "id": "…"}` begins (to put another id in its place). */
  readonly idAt: number;
}

/**
 * The parts of a successful reply as QEMU writes it, `{"return": VALUE, "id": "ID"}` with a string id
 * last, without parsing the line; undefined for any other line. The id is the text between the last
 * `, "id": "` and the closing `"}`: callers look it up among ids they made themselves (no quotes or
 * escapes in them), so a hit is exactly their id, and VALUE is then everything before it.
 */
export function replyLineParts(line: string): ReplyLineParts | undefined {
  if (!line.startsWith(RETURN_HEAD) || !line.endsWith('"}')) return undefined;
  const idAt = line.lastIndexOf(ID_TAIL);
  if (idAt <= RETURN_HEAD.length) return undefined;
  return { id: line.slice(idAt + ID_TAIL.length, line.length - 2), returnText: line.slice(RETURN_HEAD.length, idAt), idAt };
}

/** Serialises one message as a line. QEMU accepts LF; replies come back with CRLF. */
export function encodeMessage(msg: QmpMessage): string {
  return `${JSON.stringify(msg)}\n`;
}
