import { describe, expect, it } from 'vitest';
import { abortable, errorMessage, withDeadline } from '../../src/common/abort.js';

class Late extends Error {}

/** An AbortSignal that counts its listeners, to prove none is left behind. */
function countingSignal(): { signal: AbortSignal; controller: AbortController; listeners: () => number } {
  const controller = new AbortController();
  const signal = controller.signal;
  let n = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...a: Parameters<typeof add>) => (n++, add(...a))) as typeof add;
  signal.removeEventListener = ((...a: Parameters<typeof remove>) => (n--, remove(...a))) as typeof remove;
  return { signal, controller, listeners: () => n };
}

describe('withDeadline', () => {
  it('rejects with the onTimeout error when the work outlives the timeout, even if it ignores its signal', async () => {
    const never = new Promise<never>(() => {});
    const err = await withDeadline({ timeoutMs: 5, onTimeout: () => new Late('too slow') }, () => never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Late);
    expect((err as Late).message).toBe('too slow');
  });

  it("aborts with the caller's reason and removes its listener from the caller's signal", async () => {
    const { signal, controller, listeners } = countingSignal();
    let inner: AbortSignal | undefined;
    const p = withDeadline({ timeoutMs: 0, signal, onTimeout: () => new Late() }, (s) => ((inner = s), new Promise<never>(() => {})));
    expect(listeners()).toBe(1);
    controller.abort(new Error('caller gave up'));
    await expect(p).rejects.toThrow('caller gave up');
    expect(inner?.aborted).toBe(true);
    expect(listeners()).toBe(0);
  });

  it('resolves with the work\'s value, leaving no listener; an already aborted signal fails at once', async () => {
    const { signal, listeners } = countingSignal();
    expect(await withDeadline({ timeoutMs: 60_000, signal, onTimeout: () => new Late() }, async () => 42)).toBe(42);
    expect(listeners()).toBe(0);
    await expect(withDeadline({ timeoutMs: 0, signal: AbortSignal.abort(new Late('before')), onTimeout: () => new Late() }, async () => 1)).rejects.toThrow('before');
  });
});

describe('abortable and errorMessage', () => {
  it('races a promise against a signal', async () => {
    const ac = new AbortController();
    const p = abortable(new Promise<never>(() => {}), ac.signal);
    ac.abort(new Late('stop'));
    await expect(p).rejects.toBeInstanceOf(Late);
    expect(await abortable(Promise.resolve('v'), new AbortController().signal)).toBe('v');
    await expect(abortable(Promise.reject(new Late('own')), new AbortController().signal)).rejects.toThrow('own');
  });

  it('reads the message of anything thrown', () => {
    expect(errorMessage(new Error('m'))).toBe('m');
    expect(errorMessage('text')).toBe('text');
    expect(errorMessage(7)).toBe('7');
  });
});
