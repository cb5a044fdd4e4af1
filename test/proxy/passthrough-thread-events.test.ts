/** The passthrough proxy thread's event queue: in order, bounded (oldest dropped and counted), ended by end(). */
import { describe, expect, it } from 'vitest';
import { threadEvents } from '../../src/proxy/passthrough-thread/thread-target.js';

const ev = (n: number) => ({ domain: { name: 'g', uuid: 'u' }, event: `E${n}`, data: undefined, timestamp: { seconds: n, microseconds: 0 } });

describe("the proxy thread's event queue", () => {
  it('yields events in order, waits for more, and ends on end()', async () => {
    const q = threadEvents();
    q.push(ev(1));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of q) seen.push((e as { event: string }).event);
    })();
    await new Promise((r) => setTimeout(r, 10));
    q.push(ev(2));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['E1', 'E2']);
    q.end();
    await reading;
    q.push(ev(3)); // after the end: ignored
    expect(seen).toEqual(['E1', 'E2']);
  });

  it('keeps at most its limit, dropping the oldest and counting them', async () => {
    const q = threadEvents(3);
    for (let i = 1; i <= 5; i++) q.push(ev(i));
    q.end();
    const seen: string[] = [];
    for await (const e of q) seen.push((e as { event: string }).event);
    expect(seen).toEqual(['E3', 'E4', 'E5']);
    expect(q.dropped).toBe(2);
  });
});
