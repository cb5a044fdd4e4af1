import { describe, expect, it, vi } from 'vitest';
import { BoundedQueue, QueueOverflowError } from '../../src/common/bounded-queue.js';
import { LibqemuError } from '../../src/common/errors.js';

async function drain<T>(q: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of q) out.push(v);
  return out;
}

describe('BoundedQueue', () => {
  it('rejects a capacity that is not a positive integer', () => {
    for (const capacity of [0, -1, 1.5, NaN]) expect(() => new BoundedQueue({ capacity })).toThrow(RangeError);
  });

  it('delivers buffered items in order, then done after end()', async () => {
    const q = new BoundedQueue<number>({ capacity: 10 });
    expect(q.push(1)).toBe(true);
    expect(q.push(2)).toBe(true);
    expect(q.size).toBe(2);
    q.end();
    expect(await drain(q)).toEqual([1, 2]);
  });

  it('hands an item straight to a waiting consumer', async () => {
    const q = new BoundedQueue<string>({ capacity: 1 });
    const next = q.next();
    q.push('a');
    expect(await next).toEqual({ value: 'a', done: false });
    expect(q.size).toBe(0);
  });

  it('ends a waiting consumer with the given error', async () => {
    const q = new BoundedQueue<string>({ capacity: 1 });
    const next = q.next();
    q.end(new Error('gone'));
    await expect(next).rejects.toThrow('gone');
    // After the failure the iteration is finished.
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  it('overflow "error": delivers what was buffered, then throws QueueOverflowError counting the drops', async () => {
    const onDrop = vi.fn();
    const onClose = vi.fn();
    const q = new BoundedQueue<number>({ capacity: 2, onDrop, onClose, what: 'test items' });
    expect(q.push(1)).toBe(true);
    expect(q.push(2)).toBe(true);
    expect(q.push(3)).toBe(false);
    expect(q.push(4)).toBe(false);
    expect(q.dropped).toBe(2);
    expect(onDrop).toHaveBeenLastCalledWith(2);
    const got: number[] = [];
    const err = await (async () => {
      try {
        for await (const v of q) got.push(v);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(got).toEqual([1, 2]);
    expect(err).toBeInstanceOf(QueueOverflowError);
    expect(err).toBeInstanceOf(LibqemuError);
    expect((err as QueueOverflowError).dropped).toBe(2);
    expect((err as QueueOverflowError).capacity).toBe(2);
    expect((err as QueueOverflowError).message).toContain('test items');
    expect((err as QueueOverflowError).hint).toBeTruthy();
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('overflow "drop-oldest": keeps the newest items and counts the dropped ones', async () => {
    const q = new BoundedQueue<number>({ capacity: 3, overflow: 'drop-oldest' });
    for (let i = 1; i <= 7; i++) q.push(i);
    expect(q.dropped).toBe(4);
    expect(q.size).toBe(3);
    q.end();
    expect(await drain(q)).toEqual([5, 6, 7]);
  });

  it('return() (break) calls onClose once, resolves a pending next and ignores later pushes', async () => {
    const onClose = vi.fn();
    const q = new BoundedQueue<number>({ capacity: 4, onClose });
    const pending = q.next();
    await q.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(q.push(1)).toBe(false);
    expect(q.dropped).toBe(0);
    await q.return();
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('break inside for-await unsubscribes through onClose', async () => {
    const onClose = vi.fn();
    const q = new BoundedQueue<number>({ capacity: 4, onClose });
    q.push(1);
    q.push(2);
    for await (const v of q) {
      expect(v).toBe(1);
      break;
    }
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('refuses a second concurrent next()', async () => {
    const q = new BoundedQueue<number>({ capacity: 4 });
    const first = q.next();
    await expect(q.next()).rejects.toThrow(/previous next/);
    q.push(9);
    expect(await first).toEqual({ value: 9, done: false });
  });

  it('stays bounded and in order through many push/consume cycles (compaction)', async () => {
    const q = new BoundedQueue<number>({ capacity: 5000 });
    let expected = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3000; i++) expect(q.push(round * 3000 + i)).toBe(true);
      for (let i = 0; i < 3000; i++) {
        const r = await q.next();
        expect(r.value).toBe(expected++);
      }
    }
    expect(q.size).toBe(0);
    expect(q.dropped).toBe(0);
  });
});
