/**
 * The executor hand-off: the codec and the shared-memory rings that carry every call to its worker thread
 * and back, and the executor's paths that ordinary calls do not take (messages too big for a ring, more
 * calls than the request ring holds, replies faster than the main thread reads them, arguments that cannot
 * cross threads), against libvirt's in-process test:///default driver.
 */
import { spawnSync } from 'node:child_process';
import { deserialize, serialize } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, Encoder, Format } from '../../src/libvirt/exec-codec.js';
import { ByteRing, Next } from '../../src/libvirt/exec-ring.js';
import { Executor } from '../../src/libvirt/executor.js';
import { EXEC_REPLY_RING_BYTES, EXEC_REQUEST_RING_BYTES } from '../../src/libvirt/protocol.js';
import { Connection } from '../../src/libvirt/index.js';
import { tinyGuestXml } from '../../src/testing/private-libvirtd.js';

/** What postMessage (structured cloning) delivers for `v`: the codec must deliver the same. */
function cloned(v: unknown): unknown {
  return structuredClone(v);
}

function roundTrip(values: [unknown, unknown]): { format: number; header: number; values: unknown[] } {
  const encoder = new Encoder();
  const length = encoder.encode(42, values[0], values[1]);
  // The encoder's scratch buffer is reused: decode from a copy, as from the ring.
  const copy = Buffer.from(encoder.buffer.subarray(0, length));
  const out: unknown[] = [];
  const header = decode(copy, 0, copy.length, out);
  return { format: copy[0]!, header, values: out };
}

describe('executor codec', () => {
  const common: [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['booleans', [true, false]],
    ['int32 limits', [0, -1, 2 ** 31 - 1, -(2 ** 31)]],
    ['doubles', [2 ** 31, -(2 ** 31) - 1, 1.5, -0, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER]],
    ['pointers and 64-bit integers', [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n]],
    ['strings', ['', 'query-status', 'ünïcødé ✓ 𝄞 \u0000 end', 'x'.repeat(100_000)]],
    ['nested arrays', [[1, [2, [3, ['four']]]], []]],
    ['plain objects', { ptr: 123456789n, name: 'test', uuid: '6695eb01-f6a4-8304-79aa-97f2502e193f', nested: { a: [1, { b: null }] }, u: undefined }],
    ['an object without prototype', Object.assign(Object.create(null) as object, { k: 1 })],
    ['byte arrays', [new Uint8Array([1, 2, 3]), Buffer.from('bytes'), new Uint8Array(0)]],
    ['a typed-parameter list', [{ field: 'cpu_time', type: 'ullong', value: 123n }, { field: 'vcpu.0.state', type: 'int', value: 1 }]],
  ];
  it.each(common)('carries %s in its own encoding, as structured cloning would', (_name, value) => {
    const r = roundTrip(['op', value]);
    expect(r.format).toBe(Format.Native);
    expect(r.header).toBe(42);
    expect(r.values).toEqual(['op', cloned(value)]);
  });

  it('keeps -0, NaN and the type of every byte array as postMessage did', () => {
    const [, [negZero, nan, bytes]] = roundTrip(['op', [-0, NaN, Buffer.from('ab')]]).values as [string, [number, number, Uint8Array]];
    expect(Object.is(negZero, -0)).toBe(true);
    expect(Number.isNaN(nan)).toBe(true);
    // structured cloning turns a Buffer into a plain Uint8Array (callers copy it with Buffer.from when needed)
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
  });

  it('an own "__proto__" key stays a key, not the prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<string, unknown>;
    const [, out] = roundTrip(['op', value]).values as [string, Record<string, unknown>];
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'x']);
    expect((out as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it.each([
    ['a Map', new Map([['a', 1]])],
    ['a Date', new Date(0)],
    ['a class instance', new (class Point { x = 1 })()],
    ['a 65-bit integer', 2n ** 64n],
    ['a Float64Array', new Float64Array([1.5])],
  ])('falls back to v8.serialize for %s, with the same result', (_name, value) => {
    const r = roundTrip(['op', { value }]);
    expect(r.format).toBe(Format.V8);
    expect(r.values).toEqual(['op', deserialize(serialize({ value }))]);
  });

  it('refuses what structured cloning refuses (a function)', () => {
    expect(() => cloned(() => 1)).toThrow();
    expect(() => new Encoder().encode(1, 'op', [() => 1])).toThrow();
  });
});

describe('executor byte ring', () => {
  function ring(capacity: number): { ring: ByteRing; ctl: Int32Array } {
    const sab = new SharedArrayBuffer(64 + capacity);
    const ctl = new Int32Array(sab, 0, 16);
    return { ring: new ByteRing(sab, ctl, 0, 1, 64, capacity), ctl };
  }

  it('returns records in order across many wrap-arounds, and refuses one that does not fit', () => {
    const { ring: r } = ring(256);
    let seed = 7;
    const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) >>> 16) % n;
    const queue: Buffer[] = [];
    let written = 0;
    let read = 0;
    for (let step = 0; step < 5000; step++) {
      if (rand(2) === 0) {
        const rec = Buffer.alloc(rand(70), written & 0xff);
        if (r.tryWrite(rec, rec.length)) {
          queue.push(rec);
          written++;
        } else expect(r.used).toBeGreaterThan(256 - 2 * (4 + 72)); // refused only when the record and the skipped tail cannot fit
      } else {
        const next = r.next();
        if (queue.length === 0) {
          expect(next).toBe(Next.None);
          continue;
        }
        expect(next).toBe(Next.Inline);
        expect(Buffer.compare(r.bytes.subarray(r.start, r.end), queue.shift()!)).toBe(0);
        r.release();
        read++;
      }
    }
    expect(written).toBeGreaterThan(1000); // hundreds of passes over a 256-byte ring
    expect(read).toBeGreaterThan(1000);
  });

  it('fills up, then takes records again once the reader releases', () => {
    const { ring: r } = ring(64);
    const rec = Buffer.alloc(12, 1);
    let n = 0;
    while (r.tryWrite(rec, rec.length)) n++;
    expect(n).toBe(4); // 4 × (4 + 12) = 64 bytes
    expect(r.tryWriteOnPort()).toBe(false);
    expect(r.next()).toBe(Next.Inline);
    r.release();
    expect(r.tryWriteOnPort()).toBe(true);
    for (let i = 0; i < 3; i++) {
      expect(r.next()).toBe(Next.Inline);
      r.release();
    }
    expect(r.next()).toBe(Next.OnPort);
    r.release();
    expect(r.next()).toBe(Next.None);
    expect(r.used).toBe(0);
  });
});

describe('executor hand-off paths (test:///default)', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('carries a request and a reply larger than a ring allows inline (side port), in order with small calls', async () => {
    const description = 'd'.repeat(EXEC_REQUEST_RING_BYTES / 2);
    const xml = tinyGuestXml({ name: 'handoff-big' }).replace('</name>', `</name><description>${description}</description>`);
    const [dom, version] = await Promise.all([conn.defineXML(xml), conn.libVersion()]);
    expect(version.major).toBe(9);
    try {
      const [small, big, name] = await Promise.all([conn.hostname(), dom.getXMLDesc(), dom.getName()]);
      expect(small).toMatch(/\S/);
      expect(big.length).toBeGreaterThan(EXEC_REPLY_RING_BYTES / 4);
      expect(big).toContain(description);
      expect(name).toBe('handoff-big');
    } finally {
      await dom.undefine();
    }
  });

  it('settles each of more concurrent calls than the request ring holds, with its own result, in order', async () => {
    const dom = await conn.lookupDomain('test');
    const one = new Encoder().encode(1, 'invoke', ['virDomainGetXMLDesc', [2n ** 40n, 0]]) + 4;
    const n = Math.ceil((2 * EXEC_REQUEST_RING_BYTES) / one);
    // The replies (about 1 KB of XML each) also overrun the reply ring many times over.
    const settled: number[] = [];
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const p = i % 3 === 2 ? dom.getName() : i % 3 === 1 ? dom.getID() : dom.getXMLDesc();
        return p.then((v) => {
          settled.push(i);
          return v;
        });
      }),
    );
    expect(n * 1000).toBeGreaterThan(4 * EXEC_REPLY_RING_BYTES);
    results.forEach((v, i) => {
      if (i % 3 === 2) expect(v).toBe('test');
      else if (i % 3 === 1) expect(v).toBe(1);
      else expect(v).toMatch(/^<domain type='test'/);
    });
    expect(settled).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('rejects a call whose arguments cannot cross threads, and goes on working', async () => {
    const ex = await Executor.create();
    try {
      await expect(ex.call('noop', [(() => 1) as never] as never)).rejects.toThrow();
      expect(ex.busy).toBe(false);
      await expect(ex.call('noop', [])).resolves.toBeNull();
    } finally {
      await ex.terminate();
    }
    expect(ex.isDead).toBe(true);
    await expect(ex.call('noop', [])).rejects.toThrow();
  });
});

describe('process lifetime', () => {
  const run = (code: string): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: process.cwd(), encoding: 'utf8', timeout: 30_000 });
  const entry = JSON.stringify(new URL('../../src/libvirt/index.ts', import.meta.url).href);

  it('calls in flight keep the process alive; an idle connection left open does not', () => {
    // An unsettled top-level await would end the process with code 13 if a call in flight did not hold it.
    const r = run(
      `const { Connection } = await import(${entry});
       const conn = await Connection.open('test:///default');
       const dom = await conn.lookupDomain('test');
       let n = 0;
       for (let i = 0; i < 200; i++) n += (await dom.getXMLDesc()).length > 0 ? 1 : 0;
       console.log('calls', n);`,
    );
    expect(r.error).toBeUndefined(); // not killed by the timeout: it exited by itself
    expect(r.stdout).toContain('calls 200');
    expect(r.status).toBe(0);
  });
});
