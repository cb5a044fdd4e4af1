import { describe, expect, it } from 'vitest';
import { MessageFramer } from '../../src/qmp/framing.js';
import { MessageTooLargeError, QmpProtocolError } from '../../src/qmp/errors.js';
import type { QmpMessage } from '../../src/qmp/transport.js';

function collect(max?: number, reusesBuffers = false) {
  const messages: QmpMessage[] = [];
  const errors: Error[] = [];
  const framer = new MessageFramer({ message: (m) => messages.push(m), protocolError: (e) => errors.push(e) }, max, reusesBuffers);
  return { framer, messages, errors };
}

describe('MessageFramer', () => {
  it('splits LF and CRLF terminated messages from one chunk and skips blank lines', () => {
    const { framer, messages, errors } = collect();
    framer.push(Buffer.from('{"a":1}\r\n{"b":2}\n\r\n\n{"c":3}\r\n'));
    expect(messages).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
    expect(errors).toEqual([]);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('reassembles messages split at every byte, including a CRLF split between CR and LF', () => {
    const { framer, messages } = collect();
    const text = '{"return": {"status": "running"}, "id": "x"}\r\n{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}\r\n';
    for (const byte of Buffer.from(text)) framer.push(Buffer.from([byte]));
    expect(messages).toEqual([
      { return: { status: 'running' }, id: 'x' },
      { event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } },
    ]);
  });

  it('decodes multi-byte UTF-8 split across chunks', () => {
    const { framer, messages } = collect();
    const value = 'grüße 😀 — 日本';
    const bytes = Buffer.from(`${JSON.stringify({ return: value })}\n`);
    // Split inside every multi-byte sequence: one byte per chunk.
    for (let i = 0; i < bytes.length; i++) framer.push(bytes.subarray(i, i + 1));
    // And at an awkward boundary: the middle of the emoji.
    const cut = bytes.indexOf(Buffer.from('😀')) + 2;
    framer.push(bytes.subarray(0, cut));
    framer.push(bytes.subarray(cut));
    expect(messages).toEqual([{ return: value }, { return: value }]);
  });

  it('copies a small tail so it does not pin the chunk, and copies everything for producers that reuse buffers', () => {
    const tail = collect();
    const chunk = Buffer.from('{"x":12345}\n{"a":"xy');
    tail.framer.push(chunk);
    chunk.fill(0x20);
    tail.framer.push(Buffer.from('z"}\n'));
    expect(tail.messages).toEqual([{ x: 12345 }, { a: 'xyz' }]);

    const reusing = collect(undefined, true);
    const whole = Buffer.from('{"a":"xy');
    reusing.framer.push(whole);
    whole.fill(0x20); // e.g. a fixed read buffer
    reusing.framer.push(Buffer.from('z"}\n'));
    expect(reusing.messages).toEqual([{ a: 'xyz' }]);
  });

  it('skips an 11 MiB line with MessageTooLargeError and stays in sync (one chunk and many chunks)', () => {
    const big = `{"return":"${'x'.repeat(11 * 1024 * 1024)}"}\n`;
    for (const chunkSize of [big.length, 65536, 1_000_003]) {
      const { framer, messages, errors } = collect();
      framer.push(Buffer.from('{"before":1}\n'));
      const bytes = Buffer.from(`${big}{"after":2}\r\n`);
      for (let i = 0; i < bytes.length; i += chunkSize) framer.push(bytes.subarray(i, i + chunkSize));
      expect(messages).toEqual([{ before: 1 }, { after: 2 }]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(MessageTooLargeError);
      expect((errors[0] as MessageTooLargeError).limitBytes).toBe(10 * 1024 * 1024);
      expect((errors[0] as MessageTooLargeError).receivedBytes).toBe(big.length - 1);
      // Memory stays bounded: nothing of the big line is held.
      expect(framer.bufferedBytes).toBe(0);
    }
  });

  it("names the skipped reply's id (QEMU writes it last), whatever the chunking; an event gets none", () => {
    const reply = `{"return": {"x": "${'x'.repeat(5000)}", "id": "nested"}, "id": "17"}\r\n`;
    const numeric = `{"return": "${'y'.repeat(5000)}", "id": 42}\n`;
    const event = `{"event": "HUGE", "data": {"id": "not-a-reply", "s": "${'z'.repeat(5000)}"}, "timestamp": {"seconds": 1, "microseconds": 2}}\n`;
    const bytes = Buffer.from(`${reply}${numeric}${event}{"after":1}\n`);
    for (const chunkSize of [bytes.length, 4096, 100, 7]) {
      const { framer, messages, errors } = collect(1000);
      for (let i = 0; i < bytes.length; i += chunkSize) framer.push(bytes.subarray(i, i + chunkSize));
      expect(messages).toEqual([{ after: 1 }]);
      expect(errors.map((e) => (e as MessageTooLargeError).id)).toEqual(['17', '42', undefined]);
      expect(errors[0]!.message).toContain('reply (id "17")');
    }
  });

  it('reads the id of a skipped line whose end arrives in a chunk of its own', () => {
    const { framer, errors } = collect(100);
    framer.push(Buffer.from(`{"return": "${'q'.repeat(300)}"`));
    framer.push(Buffer.from(', "id": "9"}'));
    framer.push(Buffer.from('\n'));
    expect((errors[0] as MessageTooLargeError).id).toBe('9');
  });

  it('accepts a message of exactly the limit (with CRLF) and refuses one byte more', () => {
    const { framer, messages, errors } = collect(20);
    const exact = `{"a":"${'y'.repeat(12)}"}`; // 20 bytes
    expect(exact.length).toBe(20);
    framer.push(Buffer.from(`${exact}\r\n`));
    framer.push(Buffer.from(exact.slice(0, 10)));
    framer.push(Buffer.from(`${exact.slice(10)}\r\n`));
    const over = `{"a":"${'y'.repeat(13)}"}`;
    framer.push(Buffer.from(`${over}\n`));
    framer.push(Buffer.from(over.slice(0, 10)));
    framer.push(Buffer.from(`${over.slice(10)}\n`));
    expect(messages).toHaveLength(2);
    expect(errors.map((e) => e.constructor)).toEqual([MessageTooLargeError, MessageTooLargeError]);
  });

  it('reports a garbage line and a non-object as QmpProtocolError and carries on', () => {
    const { framer, messages, errors } = collect();
    framer.push(Buffer.from('this is not json\n[1,2]\n42\n{"ok":true}\n'));
    expect(messages).toEqual([{ ok: true }]);
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toBeInstanceOf(QmpProtocolError);
    expect(errors[0]!.message).toContain('not JSON');
  });

  it('assembles consecutive multi-chunk messages of different sizes correctly (reused join buffer)', () => {
    const { framer, messages, errors } = collect();
    const sizes = [300_000, 100_000, 2_500_000, 70_000];
    const payloads = sizes.map((n, i) => String.fromCharCode(97 + i).repeat(n));
    const bytes = Buffer.from(payloads.map((p) => `{"return":"${p}"}\r\n`).join(''));
    for (let i = 0; i < bytes.length; i += 65536) framer.push(bytes.subarray(i, i + 65536));
    expect(errors).toEqual([]);
    expect(messages.map((m) => m.return)).toEqual(payloads);
  });

  it('rejects a silly limit', () => {
    expect(() => collect(0)).toThrow(RangeError);
  });
});
