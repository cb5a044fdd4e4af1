/**
 * The JSON streamer on its own: QEMU 7.2's answers for each input, as recorded from a real
 * `qemu-system-x86_64 -machine none` (the conformance test in test/proxy checks them live).
 */
import { describe, expect, it } from 'vitest';
import { JsonStreamer, QEMU_JSON_LIMITS, type JsonStreamItem } from '../../src/qmp/json-streamer.js';
import { formatG17 } from '../../src/qmp/qemu-json.js';

function feed(...pieces: (string | Buffer)[]): JsonStreamItem[] {
  const out: JsonStreamItem[] = [];
  const s = new JsonStreamer((i) => out.push(i));
  for (const p of pieces) s.push(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  return out;
}
const descs = (items: JsonStreamItem[]) => items.map((i) => (i.ok ? { value: i.value, id: i.idJson } : i.desc));

describe('JsonStreamer (QEMU 7.2 semantics)', () => {
  it('reads a stream, not lines: two values on a line, one value over several chunks and lines, no newline', () => {
    expect(descs(feed('{"execute":"a","id":1}{"execute":"b","id":2}'))).toEqual([
      { value: { execute: 'a', id: 1 }, id: '1' },
      { value: { execute: 'b', id: 2 }, id: '2' },
    ]);
    expect(descs(feed('{"exec', 'ute":', '\n"a",\r\n"id"', ':3\n', '}'))).toEqual([{ value: { execute: 'a', id: 3 }, id: '3' }]);
    // split inside a multi-byte UTF-8 character and inside an escape
    const text = Buffer.from('{"x":"grüße \\u00e9😀"}', 'utf8');
    expect(descs(feed(...[...text].map((b) => Buffer.from([b]))))).toEqual([{ value: { x: 'grüße é😀' }, id: undefined }]);
  });

  it('recovers from garbage where QEMU does', () => {
    expect(descs(feed('garbage{"execute":"x","id":4}\n'))).toEqual(["JSON parse error, invalid keyword 'garbage'", { value: { execute: 'x', id: 4 }, id: '4' }]);
    expect(descs(feed('GARBAGE{"execute":"x","id":5}\n'))).toEqual(["JSON parse error, stray 'G'", { value: { execute: 'x', id: 5 }, id: '5' }]);
    // a raw newline inside a string: lexical error; input skipped to the next structural character
    expect(descs(feed('{"a":"x\ny"}'))).toEqual(["JSON parse error, stray '\"x\n'", 'JSON parse error, expecting value']);
    // 0xFF: an impossible UTF-8 byte, shown as U+FFFD like QEMU's writer does
    expect(descs(feed('"\xff" {}'))).toEqual(["JSON parse error, stray '\"\uFFFD'", { value: {}, id: undefined }]);
    expect(descs(feed('}\n', '[}]\n', '5\n'))).toEqual([
      'JSON parse error, expecting value',
      'JSON parse error, expecting value',
      'JSON parse error, expecting value',
      { value: 5, id: undefined },
    ]);
    expect(descs(feed('{"a":1,"a":2}', '{"a" 1}', '{1:2}', '[1 2]', '{"a":1 "b"}', '"\\x"', '"\\ud800"'))).toEqual([
      'JSON parse error, duplicate key',
      'JSON parse error, missing : in object pair',
      'JSON parse error, key is not a string in object',
      'JSON parse error, expected separator in list',
      'JSON parse error, expected separator in dict',
      'JSON parse error, invalid escape sequence in string',
      'JSON parse error, \\ud800 is not a valid Unicode character',
    ]);
  });

  it('echoes ids as QEMU writes them: 64-bit integers exact, doubles with %.17g, strings in ASCII, members in hash order', () => {
    const id = (text: string) => {
      const [item] = feed(`{"id":${text}}`);
      return item?.ok ? item.idJson : item?.desc;
    };
    expect(id('1.0')).toBe('1');
    expect(id('0.1')).toBe('0.10000000000000001');
    expect(id('18446744073709551615')).toBe('18446744073709551615');
    expect(id('-9223372036854775809')).toBe('-9.2233720368547758e+18');
    expect(id('1e400')).toBe('inf');
    expect(id('-0')).toBe('0');
    expect(id('1E5')).toBe('100000');
    expect(id('"\\u00e9\\ud83d\\ude00/\\u007f"')).toBe('"\\u00E9\\uD83D\\uDE00/\\u007F"');
    expect(id("'sq\\\"x'")).toBe('"sq\\"x"');
    expect(id('[1,{"a":null},true]')).toBe('[1, {"a": null}, true]');
    expect(id('{}')).toBe('{}');
    expect(formatG17(1e-7)).toBe('9.9999999999999995e-08');
  });

  it('refuses nesting beyond 1024 and keeps counting afresh after each refusal, as QEMU does (20,000 deep: no recursion)', () => {
    const items = feed(`{"execute":"query-status","id":${'['.repeat(20000)}${']'.repeat(20000)}}`);
    const counts: Record<string, number> = {};
    for (const i of items) counts[i.ok ? 'value' : i.desc] = (counts[i.ok ? 'value' : i.desc] ?? 0) + 1;
    // recorded from QEMU 7.2: 19 nesting errors, one array (not an object), 19,475 stray closers
    expect(counts).toEqual({ 'JSON nesting depth limit exceeded': 19, value: 1, 'JSON parse error, expecting value': 19475 });
  });

  it('applies the token-count limit (2 Mi tokens) and stays in sync', () => {
    const items = feed(`{"execute":"query-status","id":[${'1,'.repeat(1 << 20)}1]}{"execute":"query-status","id":"after"}`);
    const summary = items.map((i) => (i.ok ? (typeof i.value === 'object' && i.value !== null && !Array.isArray(i.value) ? `object ${i.idJson}` : 'not an object') : i.desc));
    expect(summary[0]).toBe('JSON token count limit exceeded');
    expect(summary.at(-1)).toBe('object "after"');
    // recorded from QEMU 7.2: after the refusal, 6 stray tokens and 4 scalars before the next command
    expect(summary.filter((s) => s === 'JSON parse error, expecting value')).toHaveLength(6);
    expect(summary.filter((s) => s === 'not an object')).toHaveLength(4);
  });

  it('applies the token-size limit to a value of many tokens and to a single over-long token', () => {
    const limits = { maxTokenBytes: 1000 };
    const out: JsonStreamItem[] = [];
    const s = new JsonStreamer((i) => out.push(i), limits);
    s.push(Buffer.from(`{"a":"${'x'.repeat(600)}","b":"${'y'.repeat(600)}"}{"ok":1}`));
    expect(out[0]).toEqual({ ok: false, desc: 'JSON token size limit exceeded' });
    expect(out.at(-1)).toMatchObject({ ok: true, value: { ok: 1 } });
    expect(QEMU_JSON_LIMITS).toEqual({ maxTokenBytes: 64 * 1024 * 1024, maxTokens: 2 * 1024 * 1024, maxNesting: 1024 });
  });

  it('reads a whole plain request in one step exactly as the lexer reads it byte by byte', () => {
    // Whole chunks take the one-step path when they qualify; single bytes always go through the lexer.
    const inputs = [
      '{"execute":"query-status","id":7}\n',
      '{"execute":"query-status","id":"a b"}',
      '  {"execute": "x", "arguments": {"a": [1, 2.5, -0, 1e400, true, null], "b": {"c": "d"}}, "id": 3.0}\r\n',
      '{"execute":"x","id":-0}',
      '{"execute":"x","id":-0.0}',
      '{"execute":"x","id":1e2}',
      '{"execute":"x","id":0.1}',
      '{"execute":"x","id":12345678901234567890}',
      '{"execute":"x","id":9007199254740993}',
      '{"execute":"x","id":[1,{"b":2,"a":1}]}',
      '{"execute":"x","id":{"z":1,"a":2}}',
      '{"execute":"x","id":null}',
      '{"execute":"x","id":false}',
      '{"execute":"x","execute":"y","id":1}',
      '{"execute":"x","arguments":{"a":1,"a":2}}',
      '{"__proto__":{"x":1},"execute":"x"}',
      "{'execute':'x','id':'q'}",
      '{"execute":"x\ty"}',
      '{"execute":"x\u0041"}',
      '{"execute":"x"}{"execute":"y"}',
      '{"execute":"x",}',
      '{"a":tru}',
      '{"a":"\xff"}',
      `{"a":${'['.repeat(40)}${']'.repeat(40)}}`,
      '{"a": "x: y", "b": ":"}',
      '{}',
      '{"execute":"x"} garbage',
    ];
    for (const input of inputs) {
      const whole = feed(input);
      const bytewise = feed(...[...Buffer.from(input, 'latin1')].map((b) => Buffer.from([b])));
      expect(descs(whole), input).toEqual(descs(bytewise));
      // own-property `__proto__` and member order survive too
      expect(whole.map((i) => (i.ok && i.value && typeof i.value === 'object' ? Object.keys(i.value) : null)), input).toEqual(
        bytewise.map((i) => (i.ok && i.value && typeof i.value === 'object' ? Object.keys(i.value) : null)),
      );
    }
  });
});
