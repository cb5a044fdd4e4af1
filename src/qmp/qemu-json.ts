/**
 * How QEMU itself writes JSON values, so that what a libqemu QMP endpoint echoes (a client's `id`, an
 * error description) reads exactly like QEMU's own reply: strings in ASCII with `\uXXXX` escapes,
 * numbers as QEMU stores them (64-bit integers exact, everything else printed with `%.17g`), object
 * members in the order of QEMU's hash table, `", "` and `": "` separators.
 */

const HEX = '0123456789ABCDEF';

function hex4(n: number): string {
  return HEX[(n >> 12) & 15]! + HEX[(n >> 8) & 15]! + HEX[(n >> 4) & 15]! + HEX[n & 15]!;
}

/** A JS string as QEMU quotes it: ASCII only, upper-case `\uXXXX` for controls, DEL and non-ASCII. */
export function qemuQuote(s: string): string {
  // Fast path: printable ASCII with nothing to escape.
  if (/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      default:
        // JS strings are UTF-16 already, so a character beyond the BMP is its surrogate pair, as QEMU writes it.
        out += c < 0x20 || c >= 0x7f ? `\\u${hex4(c)}` : s[i];
    }
  }
  return `${out}"`;
}

/** C's `printf("%.17g", x)`, which is how QEMU writes a number it holds as a double. */
export function formatG17(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mantissa, expText] = x.toExponential(16).split('e') as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 17) {
    const m = mantissa.includes('.') ? mantissa.replace(/\.?0+$/, '') : mantissa;
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(16 - exp);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

/**
 * A JSON number token as QEMU prints it back: an integer that fits int64 (or, when not negative,
 * uint64) exactly; any other number through a double, printed with `%.17g`.
 */
export function qemuNumberText(token: string, isInteger: boolean): string {
  // The common case: a small integer prints as it was written (only -0 changes).
  if (isInteger && token.length <= 15) return token === '-0' ? '0' : token;
  if (isInteger) {
    const n = BigInt(token);
    if ((n >= I64_MIN && n <= I64_MAX) || (!token.startsWith('-') && n <= U64_MAX)) return n.toString();
  }
  return formatG17(Number(token));
}

/** QDICT_BUCKET_MAX in QEMU's qdict.c. */
const BUCKETS = 512;

/** QEMU's `tdb_hash()` over a key's bytes. */
function tdbHash(key: Uint8Array): number {
  let value = Math.imul(0x238f13af, key.length) >>> 0;
  for (let i = 0; i < key.length; i++) value = (value + (key[i]! << ((i * 5) % 24))) >>> 0;
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

/** The bytes QEMU holds for a key: UTF-8, with NUL as C0 80 (modified UTF-8). */
function keyBytes(key: string): Uint8Array {
  if (!key.includes('\0')) return Buffer.from(key, 'utf8');
  const nul = Buffer.from([0xc0, 0x80]);
  return Buffer.concat(key.split('\0').flatMap((part, i) => (i === 0 ? [Buffer.from(part, 'utf8')] : [nul, Buffer.from(part, 'utf8')])));
}

const bucketCache = new Map<string, number>();

function bucketOf(key: string): number {
  let b = bucketCache.get(key);
  if (b === undefined) {
    b = tdbHash(keyBytes(key)) % BUCKETS;
    if (bucketCache.size < 4096) bucketCache.set(key, b);
  }
  return b;
}

/**
 * The order in which QEMU visits the members of a dictionary built by inserting `keys` in this order:
 * by hash bucket, and within a bucket the most recently inserted first.
 */
export function qemuKeyOrder(keys: readonly string[]): string[] {
  // Requests mostly repeat a few key sets ({execute, arguments, id}): remember their order.
  const signature = keys.join('\0');
  const known = orderCache.get(signature);
  if (known) return known;
  const order = keys
    .map((key, index) => ({ key, index, bucket: bucketOf(key) }))
    .sort((a, b) => a.bucket - b.bucket || b.index - a.index)
    .map((e) => e.key);
  if (orderCache.size < 256) orderCache.set(signature, order);
  return order;
}

const orderCache = new Map<string, string[]>();

/**
 * Decodes one character the way QEMU's `mod_utf8_codepoint()` does: returns the code point (or -1
 * for an invalid sequence) and how many bytes it consumed. `bytes` reads 0 past the end.
 */
export function modUtf8CodePoint(bytes: (i: number) => number, at: number): { cp: number; next: number } {
  let p = at;
  let byte = bytes(p++);
  if (byte === 0) return { cp: -1, next: at };
  if (byte < 0x80) return { cp: byte, next: p };
  if (byte >= 0xfe || (byte & 0x40) === 0) return { cp: -1, next: p };
  let len = 0;
  let mask = 0x80;
  for (; byte & mask; mask >>= 1) len++;
  let cp = byte & (mask - 1);
  for (let i = 1; i < len; i++) {
    byte = bytes(p);
    if ((byte & 0xc0) !== 0x80) return { cp: -1, next: p };
    p++;
    cp = cp * 64 + (byte & 0x3f);
  }
  const minCp = [0x80, 0x800, 0x10000, 0x200000, 0x4000000][len - 2]!;
  if (!isValidCodePoint(cp) || (cp < minCp && !(cp === 0 && len === 2))) cp = -1;
  return { cp, next: p };
}

/** QEMU's `is_valid_codepoint()`: Unicode range, no surrogates, no noncharacters. */
export function isValidCodePoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return !(cp >= 0xd800 && cp <= 0xdfff);
}

/**
 * Raw bytes (a latin1 string, one char per byte) as QEMU's JSON writer would render them in a
 * string: up to the first NUL, each invalid UTF-8 sequence as U+FFFD. Used for the text of a lexical
 * error ("stray '…'"), which QEMU copies from the input as is.
 */
export function bytesAsQemuText(latin1: string): string {
  let out = '';
  const at = (i: number) => (i < latin1.length ? latin1.charCodeAt(i) : 0);
  for (let i = 0; i < latin1.length && at(i) !== 0; ) {
    const { cp, next } = modUtf8CodePoint(at, i);
    out += String.fromCodePoint(cp < 0 ? 0xfffd : cp);
    i = next > i ? next : i + 1;
  }
  return out;
}
