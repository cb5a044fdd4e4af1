/**
 * Reads a QMP byte stream the way QEMU 7.2 does (qobject/json-lexer.c, json-streamer.c): a JSON
 * stream, not lines. Any number of values per line, values across lines, no newline needed; a value
 * is complete when its brackets balance. QEMU's limits (64 MiB of tokens, 2 Mi tokens, nesting 1024)
 * and its recovery: after a lexical error input is skipped up to the next structural character,
 * ASCII control character or 0xFE/0xFF byte. Each complete value or error is handed to `emit` in
 * input order, with QEMU's own error descriptions.
 */
import { parseTokens, Tok, type ParseResult, type TokenList } from './json-parser.js';
import { bytesAsQemuText, qemuQuote } from './qemu-json.js';

export interface JsonStreamLimits {
  /** Bytes of tokens in one value (QEMU: 64 MiB). */
  maxTokenBytes: number;
  /** Tokens in one value (QEMU: 2 Mi). */
  maxTokens: number;
  /** Open brackets and braces at once (QEMU: 1024). */
  maxNesting: number;
}

/** QEMU 7.2's MAX_TOKEN_SIZE, MAX_TOKEN_COUNT and MAX_NESTING. */
export const QEMU_JSON_LIMITS: Readonly<JsonStreamLimits> = Object.freeze({
  maxTokenBytes: 64 * 1024 * 1024,
  maxTokens: 2 * 1024 * 1024,
  maxNesting: 1024,
});

/** One result of the stream: a parsed value (with its `id` as QEMU writes it) or an error description. */
export type JsonStreamItem = ParseResult;

// Lexer states (json-lexer.c); 0 is JSON_ERROR, tokens are ≥ 100, LOOKAHEAD marks "do not consume".
const IN_RECOVERY = 1;
const IN_DQ_STRING_ESCAPE = 2;
const IN_DQ_STRING = 3;
const IN_SQ_STRING_ESCAPE = 4;
const IN_SQ_STRING = 5;
const IN_ZERO = 6;
const IN_EXP_DIGITS = 7;
const IN_EXP_SIGN = 8;
const IN_EXP_E = 9;
const IN_MANTISSA = 10;
const IN_MANTISSA_DIGITS = 11;
const IN_DIGITS = 12;
const IN_SIGN = 13;
const IN_KEYWORD = 14;
const IN_START = 16;
const STATES = 17;
const LOOKAHEAD = 0x80;

const TABLE = buildTable();

function buildTable(): Uint8Array {
  const t = new Uint8Array(STATES * 256); // 0 = JSON_ERROR everywhere not listed
  const set = (state: number, from: number, to: number, next: number) => {
    for (let c = from; c <= to; c++) t[state * 256 + c] = next;
  };
  const ch = (s: string) => s.charCodeAt(0);
  const one = (state: number, c: string, next: number) => set(state, ch(c), ch(c), next);
  const terminal = (state: number, tok: number) => set(state, 0, 255, tok | LOOKAHEAD);

  set(IN_RECOVERY, 0, 0x1f, IN_START | LOOKAHEAD);
  set(IN_RECOVERY, 0x20, 0xfd, IN_RECOVERY);
  set(IN_RECOVERY, 0xfe, 0xff, IN_START | LOOKAHEAD);
  one(IN_RECOVERY, '\t', IN_RECOVERY);
  for (const c of '[]{}:,') one(IN_RECOVERY, c, IN_START | LOOKAHEAD);

  set(IN_DQ_STRING_ESCAPE, 0x20, 0xfd, IN_DQ_STRING);
  set(IN_DQ_STRING, 0x20, 0xfd, IN_DQ_STRING);
  one(IN_DQ_STRING, '\\', IN_DQ_STRING_ESCAPE);
  one(IN_DQ_STRING, '"', Tok.String);
  set(IN_SQ_STRING_ESCAPE, 0x20, 0xfd, IN_SQ_STRING);
  set(IN_SQ_STRING, 0x20, 0xfd, IN_SQ_STRING);
  one(IN_SQ_STRING, '\\', IN_SQ_STRING_ESCAPE);
  one(IN_SQ_STRING, "'", Tok.String);

  terminal(IN_ZERO, Tok.Integer);
  set(IN_ZERO, ch('0'), ch('9'), Tok.Error);
  one(IN_ZERO, '.', IN_MANTISSA);

  terminal(IN_EXP_DIGITS, Tok.Float);
  set(IN_EXP_DIGITS, ch('0'), ch('9'), IN_EXP_DIGITS);
  set(IN_EXP_SIGN, ch('0'), ch('9'), IN_EXP_DIGITS);
  one(IN_EXP_E, '-', IN_EXP_SIGN);
  one(IN_EXP_E, '+', IN_EXP_SIGN);
  set(IN_EXP_E, ch('0'), ch('9'), IN_EXP_DIGITS);
  terminal(IN_MANTISSA_DIGITS, Tok.Float);
  set(IN_MANTISSA_DIGITS, ch('0'), ch('9'), IN_MANTISSA_DIGITS);
  one(IN_MANTISSA_DIGITS, 'e', IN_EXP_E);
  one(IN_MANTISSA_DIGITS, 'E', IN_EXP_E);
  set(IN_MANTISSA, ch('0'), ch('9'), IN_MANTISSA_DIGITS);

  terminal(IN_DIGITS, Tok.Integer);
  set(IN_DIGITS, ch('0'), ch('9'), IN_DIGITS);
  one(IN_DIGITS, 'e', IN_EXP_E);
  one(IN_DIGITS, 'E', IN_EXP_E);
  one(IN_DIGITS, '.', IN_MANTISSA);
  one(IN_SIGN, '0', IN_ZERO);
  set(IN_SIGN, ch('1'), ch('9'), IN_DIGITS);

  terminal(IN_KEYWORD, Tok.Keyword);
  set(IN_KEYWORD, ch('a'), ch('z'), IN_KEYWORD);

  // QMP runs without interpolation, so '%' is an error like any other stray character.
  one(IN_START, '"', IN_DQ_STRING);
  one(IN_START, "'", IN_SQ_STRING);
  one(IN_START, '0', IN_ZERO);
  set(IN_START, ch('1'), ch('9'), IN_DIGITS);
  one(IN_START, '-', IN_SIGN);
  one(IN_START, '{', Tok.LCurly);
  one(IN_START, '}', Tok.RCurly);
  one(IN_START, '[', Tok.LSquare);
  one(IN_START, ']', Tok.RSquare);
  one(IN_START, ',', Tok.Comma);
  one(IN_START, ':', Tok.Colon);
  set(IN_START, ch('a'), ch('z'), IN_KEYWORD);
  for (const c of ' \t\r\n') one(IN_START, c, IN_START);
  return t;
}

/** Bytes that continue a string without changing the lexer's state (not a quote, backslash, control, FE/FF). */
const STRING_PLAIN = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x20; c <= 0xfd; c++) t[c] = 1;
  t[0x22] = 0; // "
  t[0x27] = 0; // '
  t[0x5c] = 0; // \
  return t;
})();

/**
 * Bytes a chunk may hold to be read in one step (readSimpleChunk): printable ASCII without a backslash
 * (so no escapes), and the whitespace QEMU's lexer skips.
 */
const SIMPLE_BYTE = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x20; c <= 0x7e; c++) t[c] = 1;
  t[0x5c] = 0;
  t[0x09] = t[0x0a] = t[0x0d] = 1;
  return t;
})();
/** Chunks longer than this (or nested deeper) always go through the lexer: requests are small and flat. */
const SIMPLE_MAX_BYTES = 4096;
const SIMPLE_MAX_DEPTH = 32;

/**
 * The common case in one step: a chunk that is exactly one small object in plain ASCII, with no escape,
 * no single-quoted string, no duplicate key and a scalar `id`. For such input JSON.parse gives the value
 * QEMU's parser gives (same strings, same doubles, same member order), at a fraction of the cost of the
 * byte-by-byte lexer. Anything else — or anything JSON.parse refuses — returns undefined and is read by
 * the lexer, which owns every error and limit.
 */
function readSimpleChunk(chunk: Buffer, limits: JsonStreamLimits): ParseResult | undefined {
  const n = chunk.length;
  if (n > SIMPLE_MAX_BYTES || n * 2 >= limits.maxTokenBytes || n >= limits.maxTokens) return undefined;
  let first = 0;
  while (first < n && (chunk[first] === 0x20 || chunk[first] === 0x0a || chunk[first] === 0x0d || chunk[first] === 0x09)) first++;
  if (chunk[first] !== 0x7b) return undefined; // {
  let inString = false;
  let depth = 0;
  let colons = 0;
  let last = 0;
  for (let i = first; i < n; i++) {
    const b = chunk[i]!;
    if (SIMPLE_BYTE[b] !== 1) return undefined;
    if (inString) {
      if (b === 0x22) inString = false;
      else if (b < 0x20) return undefined; // a raw tab or newline inside a string: the lexer's error
      continue;
    }
    if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > SIMPLE_MAX_DEPTH || depth > limits.maxNesting) return undefined;
    } else if (b === 0x7d || b === 0x5d) depth--;
    else if (b === 0x3a) colons++;
    else if (b === 0x27) return undefined; // a single-quoted string (QEMU's extension)
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) last = b;
  }
  if (inString || depth !== 0 || last !== 0x7d) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(chunk.toString('latin1'));
  } catch {
    return undefined;
  }
  // JSON.parse keeps the last of duplicate keys where QEMU refuses them: every colon must be a key.
  if (countKeys(value) !== colons) return undefined;
  const id = (value as Record<string, unknown>).id;
  let idJson: string | undefined;
  if (id === undefined) idJson = undefined;
  else if (typeof id === 'string') idJson = qemuQuote(id);
  // QEMU prints a safe integer the same whether it was written as an integer or a double (but not -0).
  else if (typeof id === 'number' && Number.isSafeInteger(id) && !Object.is(id, -0)) idJson = String(id);
  else if (typeof id === 'boolean' || id === null) idJson = String(id);
  else return undefined; // other numbers and structured ids: the lexer keeps their exact text
  return { ok: true, value, idJson };
}

/** Members of every object in a parsed value (its depth is bounded by SIMPLE_MAX_DEPTH). */
function countKeys(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let count = 0;
  if (Array.isArray(v)) for (const item of v) count += countKeys(item);
  else {
    for (const key of Object.keys(v)) count += 1 + countKeys((v as Record<string, unknown>)[key]);
  }
  return count;
}

const ONE_BYTE = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

export class JsonStreamer {
  private state = IN_START;
  /** Pieces of the current token from earlier chunks. */
  private tokenParts: Buffer[] = [];
  private tokenLen = 0;
  private braces = 0;
  private brackets = 0;
  private tokens: TokenList = { types: [], texts: [] };
  private tokenBytes = 0;
  private readonly limits: JsonStreamLimits;

  constructor(
    private readonly emit: (item: JsonStreamItem) => void,
    limits: Partial<JsonStreamLimits> = {},
  ) {
    this.limits = { ...QEMU_JSON_LIMITS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${String(v)}`);
    }
  }

  /** Bytes held for a value not complete yet (tokens plus the token being read). */
  get bufferedBytes(): number {
    return this.tokenBytes + this.tokenLen;
  }

  /** Feeds bytes; emits every value or error they complete, in order. */
  push(chunk: Buffer): void {
    // Between values, a chunk holding exactly one plain request skips the lexer.
    if (this.state === IN_START && this.tokenLen === 0 && this.tokens.types.length === 0) {
      const simple = readSimpleChunk(chunk, this.limits);
      if (simple) return this.emit(simple);
    }
    const n = chunk.length;
    const max = this.limits.maxTokenBytes;
    let tokStart = 0;
    for (let i = 0; i < n; i++) {
      let state = this.state;
      // Fast path through the inside of a string: no state change, only the token grows.
      if (state === IN_DQ_STRING || state === IN_SQ_STRING) {
        let j = i;
        const stop = Math.min(n, i + (max + 1 - this.tokenLen));
        while (j < stop && STRING_PLAIN[chunk[j]!] === 1) j++;
        if (j > i) {
          this.tokenLen += j - i;
          i = j;
          if (this.tokenLen > max) {
            tokStart = this.tokenTooLong(chunk, tokStart, i);
            i--;
            continue;
          }
          if (i >= n) break;
        }
      }
      const b = chunk[i]!;
      let consumed = false;
      while (!consumed) {
        const next = TABLE[state * 256 + b]!;
        consumed = (next & LOOKAHEAD) === 0;
        let ns = next & ~LOOKAHEAD;
        if (consumed) this.tokenLen++;
        if (ns >= Tok.LCurly) {
          this.token(ns, this.takeToken(chunk, tokStart, consumed ? i + 1 : i));
          tokStart = consumed ? i + 1 : i;
          ns = IN_START;
        } else if (ns === IN_START || ns === IN_RECOVERY) {
          this.dropToken();
          tokStart = consumed ? i + 1 : i;
        } else if (ns === Tok.Error) {
          this.token(Tok.Error, this.takeToken(chunk, tokStart, i + 1));
          tokStart = i + 1;
          ns = IN_RECOVERY;
        }
        state = ns;
      }
      this.state = state;
      if (this.tokenLen > max) tokStart = this.tokenTooLong(chunk, tokStart, i + 1);
    }
    if (this.tokenLen > 0 && tokStart < n) {
      const rest = chunk.subarray(tokStart);
      // A small tail must not pin a large chunk in memory.
      this.tokenParts.push(rest.length * 4 < chunk.length ? Buffer.from(rest) : rest);
    }
  }

  /** QEMU hands an over-long token to the streamer as is (which refuses it) and starts afresh. */
  private tokenTooLong(chunk: Buffer, tokStart: number, end: number): number {
    this.token(this.state, this.takeToken(chunk, tokStart, end));
    this.state = IN_START;
    return end;
  }

  private takeToken(chunk: Buffer, start: number, end: number): string {
    let text: string;
    if (this.tokenParts.length === 0) {
      const len = end - start;
      // Short tokens (brackets, small numbers, keys) without a trip into C++ each.
      if (len === 1) text = ONE_BYTE[chunk[start]!]!;
      else if (len <= 16) {
        text = '';
        for (let i = start; i < end; i++) text += ONE_BYTE[chunk[i]!]!;
      } else text = chunk.toString('latin1', start, end);
    }
    else {
      this.tokenParts.push(chunk.subarray(start, end));
      text = Buffer.concat(this.tokenParts).toString('latin1');
    }
    this.dropToken();
    return text;
  }

  private dropToken(): void {
    if (this.tokenParts.length > 0) this.tokenParts = [];
    this.tokenLen = 0;
  }

  /** json_message_process_token(), QEMU 7.2. */
  private token(type: number, text: string): void {
    switch (type) {
      case Tok.LCurly:
        this.braces++;
        break;
      case Tok.RCurly:
        this.braces--;
        break;
      case Tok.LSquare:
        this.brackets++;
        break;
      case Tok.RSquare:
        this.brackets--;
        break;
      case Tok.Error:
        return this.finish({ ok: false, desc: `JSON parse error, stray '${bytesAsQemuText(text)}'` });
      default:
        break;
    }
    if (this.tokenBytes + text.length + 1 > this.limits.maxTokenBytes) return this.finish({ ok: false, desc: 'JSON token size limit exceeded' });
    if (this.tokens.types.length + 1 > this.limits.maxTokens) return this.finish({ ok: false, desc: 'JSON token count limit exceeded' });
    if (this.brackets + this.braces > this.limits.maxNesting) return this.finish({ ok: false, desc: 'JSON nesting depth limit exceeded' });
    this.tokens.types.push(type);
    this.tokens.texts.push(text);
    this.tokenBytes += text.length;
    // Still inside a value: keep reading. A count below zero (`}` before `{`) ends the value at once.
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.finish(parseTokens(this.tokens));
  }

  private finish(item: JsonStreamItem): void {
    this.braces = 0;
    this.brackets = 0;
    if (this.tokens.types.length > 0) this.tokens = { types: [], texts: [] };
    this.tokenBytes = 0;
    this.emit(item);
  }
}
