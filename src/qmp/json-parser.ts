/**
 * Turns the tokens of one complete JSON value into a JS value with QEMU's own error descriptions
 * (QEMU 7.2's qobject/json-parser.c): the first error met in QEMU's descent is the one reported.
 * Iterative with an explicit stack: a deeply nested value costs heap, never the call stack.
 */
import { formatG17, isValidCodePoint, modUtf8CodePoint, qemuKeyOrder, qemuNumberText, qemuQuote } from './qemu-json.js';

export const enum Tok {
  Error = 0,
  LCurly = 100,
  RCurly,
  LSquare,
  RSquare,
  Colon,
  Comma,
  Integer,
  Float,
  Keyword,
  String,
}

/** The tokens of one message: parallel arrays; texts are latin1 strings (one char per input byte). */
export interface TokenList {
  types: number[];
  texts: string[];
}

export type ParseResult = { ok: true; value: unknown; idJson: string | undefined } | { ok: false; desc: string };

class ParseError {
  constructor(readonly message: string) {}
}

/** QEMU formats its message into a 1024-byte buffer before prefixing it. */
function fail(message: string): never {
  throw new ParseError(`JSON parse error, ${message.length > 1023 ? message.slice(0, 1023) : message}`);
}

interface ObjFrame {
  kind: 'obj';
  obj: Record<string, unknown>;
  key: string | undefined;
  /** Token index where the current member's value starts (to find the top-level `id`). */
  valueStart: number;
}
interface ArrFrame {
  kind: 'arr';
  arr: unknown[];
}

/**
 * Parses tokens[0..n) as one JSON value. For a top-level object with an `id` member, `idJson` is that
 * id as QEMU would write it back.
 */
export function parseTokens(tokens: TokenList): ParseResult {
  try {
    const { value, idRange } = parseValueIteratively(tokens);
    return { ok: true, value, idJson: idRange ? writeQemuJson(tokens, idRange[0], idRange[1]) : undefined };
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, desc: err.message };
    throw err;
  }
}

function parseValueIteratively(tokens: TokenList): { value: unknown; idRange: [number, number] | undefined } {
  const { types, texts } = tokens;
  const n = types.length;
  let pos = 0;
  let idRange: [number, number] | undefined;
  const stack: (ObjFrame | ArrFrame)[] = [];
  const pop = (): number => (pos < n ? types[pos++]! : -1);

  for (;;) {
    // parse_value(): yields a complete value in `value`, or opens a container and continues with its first member.
    let value: unknown;
    const t = pos < n ? types[pos]! : -1;
    switch (t) {
      case -1:
        fail('premature EOI');
      // falls through (fail throws)
      case Tok.LCurly:
      case Tok.LSquare: {
        pos++;
        const close = t === Tok.LCurly ? Tok.RCurly : Tok.RSquare;
        if (pos >= n) fail('premature EOI');
        if (types[pos] === close) {
          pos++;
          value = t === Tok.LCurly ? {} : [];
          break;
        }
        if (t === Tok.LCurly) stack.push({ kind: 'obj', obj: {}, key: undefined, valueStart: -1 });
        else stack.push({ kind: 'arr', arr: [] });
        continue;
      }
      case Tok.String:
        value = decodeString(texts[pos++]!);
        break;
      case Tok.Integer:
      case Tok.Float:
        value = Number(texts[pos++]);
        break;
      case Tok.Keyword: {
        const k = texts[pos++]!;
        if (k === 'true') value = true;
        else if (k === 'false') value = false;
        else if (k === 'null') value = null;
        else fail(`invalid keyword '${k}'`);
        break;
      }
      default:
        fail('expecting value');
    }

    // Hand the value to the container being filled, closing containers as their ends arrive.
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) return { value, idRange };
      if (top.kind === 'arr') {
        top.arr.push(value);
        const sep = pop();
        if (sep === -1) fail('premature EOI');
        if (sep === Tok.RSquare) {
          stack.pop();
          value = top.arr;
          continue;
        }
        if (sep !== Tok.Comma) fail('expected separator in list');
        break;
      }
      if (top.key === undefined) {
        if (typeof value !== 'string') fail('key is not a string in object');
        top.key = value;
        const colon = pop();
        if (colon === -1) fail('premature EOI');
        if (colon !== Tok.Colon) fail('missing : in object pair');
        top.valueStart = pos;
        break;
      }
      const key = top.key;
      if (Object.prototype.hasOwnProperty.call(top.obj, key)) fail('duplicate key');
      if (key === '__proto__') Object.defineProperty(top.obj, key, { value, enumerable: true, writable: true, configurable: true });
      else top.obj[key] = value;
      if (key === 'id' && stack.length === 1) idRange = [top.valueStart, pos];
      top.key = undefined;
      const sep = pop();
      if (sep === -1) fail('premature EOI');
      if (sep === Tok.RCurly) {
        stack.pop();
        value = top.obj;
        continue;
      }
      if (sep !== Tok.Comma) fail('expected separator in dict');
      if (pos >= n) fail('premature EOI');
      break;
    }
  }
}

function cvt4hex(s: string, at: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = at + i < s.length ? s.charCodeAt(at + i) : 0;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    cp = (cp << 4) | d;
  }
  return cp;
}

const PLAIN_ASCII = /^[\x20-\x26\x28-\x5b\x5d-\x7e]*$/;

/** A string token (quotes included, latin1 text = raw bytes) decoded with QEMU's parse_string() rules. */
export function decodeString(text: string): string {
  const quote = text.charCodeAt(0);
  const inner = text.slice(1, -1);
  // Fast path: ASCII with no escapes and no quote characters of either kind.
  if (PLAIN_ASCII.test(inner)) return inner;
  const at = (i: number) => (i < text.length ? text.charCodeAt(i) : 0);
  let out = '';
  let p = 1;
  while (at(p) !== quote) {
    const c = at(p);
    if (c === 0x5c) {
      const beg = p;
      p++;
      const e = at(p++);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x27:
          out += "'";
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          let cp = cvt4hex(text, p);
          p += 4;
          if (cp >= 0xd800 && cp <= 0xdbff && at(p) === 0x5c && at(p + 1) === 0x75) {
            cp = 0x10000 + ((cp & 0x3ff) << 10);
            const trailing = cvt4hex(text, p + 2);
            if (trailing >= 0xdc00 && trailing <= 0xdfff) {
              cp |= trailing & 0x3ff;
              p += 6;
            } else cp = -1;
          }
          if (!isValidCodePoint(cp)) {
            const shown = (text + '\0').slice(beg, p);
            fail(`${shown.split('\0')[0]} is not a valid Unicode character`);
          }
          out += String.fromCodePoint(cp);
          break;
        }
        default:
          fail('invalid escape sequence in string');
      }
      continue;
    }
    const { cp, next } = modUtf8CodePoint(at, p);
    if (cp < 0) fail('invalid UTF-8 sequence in string');
    out += String.fromCodePoint(cp);
    p = next;
  }
  return out;
}

type Node = { leaf: string } | { keys: string[]; vals: Node[] } | { items: Node[] };

/**
 * Writes tokens[start..end) (one valid value) back the way QEMU's JSON writer would: used for the
 * `id` QEMU echoes. Builds a small tree iteratively, then writes it iteratively.
 */
export function writeQemuJson(tokens: TokenList, start: number, end: number): string {
  const { types, texts } = tokens;
  // The common case, a scalar id: no tree to build.
  if (end === start + 1) {
    const t = types[start]!;
    if (t === Tok.Integer) return qemuNumberText(texts[start]!, true);
    if (t === Tok.Float) return formatG17(Number(texts[start]));
    if (t === Tok.String) return qemuQuote(decodeString(texts[start]!));
    if (t === Tok.Keyword) return texts[start]!;
  }
  const stack: Exclude<Node, { leaf: string }>[] = [];
  let root: Node | undefined;
  let pendingKey: string | undefined;
  const attach = (node: Node) => {
    const top = stack[stack.length - 1];
    if (!top) root = node;
    else if ('items' in top) top.items.push(node);
    else {
      top.keys.push(pendingKey!);
      top.vals.push(node);
      pendingKey = undefined;
    }
  };
  for (let i = start; i < end; i++) {
    const t = types[i]!;
    switch (t) {
      case Tok.LCurly:
      case Tok.LSquare: {
        const node: Exclude<Node, { leaf: string }> = t === Tok.LCurly ? { keys: [], vals: [] } : { items: [] };
        attach(node);
        stack.push(node);
        break;
      }
      case Tok.RCurly:
      case Tok.RSquare:
        stack.pop();
        break;
      case Tok.String: {
        const s = decodeString(texts[i]!);
        const top = stack[stack.length - 1];
        if (top && 'keys' in top && pendingKey === undefined && types[i + 1] === Tok.Colon) pendingKey = s;
        else attach({ leaf: qemuQuote(s) });
        break;
      }
      case Tok.Integer:
        attach({ leaf: qemuNumberText(texts[i]!, true) });
        break;
      case Tok.Float:
        attach({ leaf: formatG17(Number(texts[i])) });
        break;
      case Tok.Keyword:
        attach({ leaf: texts[i]! });
        break;
      default:
        break; // ':' and ','
    }
  }
  let out = '';
  const work: (Node | string)[] = [root!];
  while (work.length > 0) {
    const item = work.pop()!;
    if (typeof item === 'string') {
      out += item;
    } else if ('leaf' in item) {
      out += item.leaf;
    } else if ('items' in item) {
      if (item.items.length === 0) {
        out += '[]';
        continue;
      }
      out += '[';
      work.push(']');
      for (let i = item.items.length - 1; i >= 0; i--) {
        work.push(item.items[i]!);
        if (i > 0) work.push(', ');
      }
    } else {
      if (item.keys.length === 0) {
        out += '{}';
        continue;
      }
      const order = qemuKeyOrder(item.keys);
      out += '{';
      work.push('}');
      for (let i = order.length - 1; i >= 0; i--) {
        const k = order[i]!;
        work.push(item.vals[item.keys.indexOf(k)]!);
        work.push(`${qemuQuote(k)}: `);
        if (i > 0) work.push(', ');
      }
    }
  }
  return out;
}
