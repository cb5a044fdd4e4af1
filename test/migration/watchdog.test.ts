import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { MigrationWatchdog, validateWatchdog, type WatchdogActuator, type WatchdogOptions, type WatchdogState } from '../../src/migration/watchdog.js';

/** A scripted actuator: records every call with the fake clock's time; failures can be injected. */
function scriptedActuator(fail: Partial<Record<keyof WatchdogActuator, Error>> = {}) {
  const calls: string[] = [];
  const act = (name: keyof WatchdogActuator, label: string) => {
    calls.push(`${Date.now()}:${label}`);
    return fail[name] ? Promise.reject(fail[name]) : Promise.resolve();
  };
  const actuator: WatchdogActuator = {
    abort: () => act('abort', 'abort'),
    pause: () => act('pause', 'pause'),
    setDowntimeLimit: (ms) => act('setDowntimeLimit', `downtime=${ms}`),
  };
  return { actuator, calls };
}

function watch(options: WatchdogOptions | undefined, actuator: WatchdogActuator) {
  const states: string[] = [];
  const errors: string[] = [];
  const wd = new MigrationWatchdog(options && validateWatchdog(options), actuator, {
    onTransition: (s: WatchdogState, d) => states.push(d.downtimeLimitMs === undefined ? s : `${s}@${d.downtimeLimitMs}`),
    onActuatorError: (_e, action) => errors.push(action),
  });
  return { wd, states, errors };
}

describe('MigrationWatchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts at the deadline, and only then', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd, states } = watch({ deadlineMs: 3000, action: 'abort' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(2999);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(['3000:abort']);
    expect(wd.firedAbort).toBe(true);
    expect(states).toEqual(['armed', 'aborting']);
  });

  it('does nothing when the migration settles before the deadline', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd, states } = watch({ deadlineMs: 1000, action: 'pause' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(500);
    wd.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([]);
    expect(states).toEqual(['armed', 'stopped']);
  });

  it('pauses the guest at the deadline and then waits', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd, states } = watch({ deadlineMs: 2000, action: 'pause' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toEqual(['2000:pause']);
    expect(wd.pausedGuest).toBe(true);
    expect(states).toEqual(['armed', 'paused']);
  });

  it('raises downtime-limit step by step, then falls back to its last resort', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd, states } = watch({ deadlineMs: 1000, action: 'raise-downtime', stepMs: 400, maxMs: 1000, intervalMs: 500, then: 'pause' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual(['1000:downtime=400', '1500:downtime=800', '2000:downtime=1000', '2500:pause']);
    expect(states).toEqual(['armed', 'raising@400', 'raising@800', 'raising@1000', 'paused']);
  });

  it('stops raising as soon as the migration settles', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd } = watch({ deadlineMs: 100, action: 'raise-downtime' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(1100); // 100: 500 ms, 1100: 1000 ms
    wd.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toEqual(['100:downtime=500', '1100:downtime=1000']);
  });

  it('aborts by default after the highest limit', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd } = watch({ deadlineMs: 100, action: 'raise-downtime', stepMs: 1000, maxMs: 2000, intervalMs: 100 }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual(['100:downtime=1000', '200:downtime=2000', '300:abort']);
    expect(wd.firedAbort).toBe(true);
  });

  it('abort() works at any time, before the deadline, once', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd, states } = watch({ deadlineMs: 5000, action: 'pause' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([wd.abort(), wd.abort()]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual(['100:abort']);
    expect(wd.firedAbort).toBe(false);
    expect(states).toEqual(['armed', 'aborting']);
  });

  it('abort() during the raising steps ends them', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd } = watch({ deadlineMs: 100, action: 'raise-downtime', intervalMs: 100 }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(250);
    await wd.abort();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual(['100:downtime=500', '200:downtime=1000', '250:abort']);
  });

  it('without options it never acts on its own, but abort() still works', async () => {
    const { actuator, calls } = scriptedActuator();
    const { wd } = watch(undefined, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(calls).toEqual([]);
    await wd.abort();
    expect(calls).toEqual(['3600000:abort']);
  });

  it('falls back to abort when pausing fails, and reports the failure', async () => {
    const { actuator, calls } = scriptedActuator({ pause: new Error('no') });
    const { wd, errors } = watch({ deadlineMs: 10, action: 'pause' }, actuator);
    wd.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toEqual(['10:pause', '10:abort']);
    expect(errors).toEqual(['pause']);
    expect(wd.pausedGuest).toBe(false);
  });

  it('abort() rejects when the abort itself fails', async () => {
    const { actuator } = scriptedActuator({ abort: new Error('no job') });
    const { wd, errors } = watch(undefined, actuator);
    wd.start();
    await expect(wd.abort()).rejects.toThrow('no job');
    expect(errors).toEqual(['abort']);
  });
});

describe('validateWatchdog', () => {
  it('fills defaults', () => {
    expect(validateWatchdog({ deadlineMs: 5, action: 'raise-downtime' })).toEqual({
      deadlineMs: 5, action: 'raise-downtime', stepMs: 500, maxMs: 5000, intervalMs: 1000, then: 'abort',
    });
  });
  it.each([
    [{ deadlineMs: 0, action: 'abort' }, /deadlineMs must be a positive/],
    [{ action: 'abort' }, /deadlineMs is required/],
    [{ deadlineMs: 10, action: 'explode' }, /action must be/],
    [{ deadlineMs: 10, action: 'raise-downtime', stepMs: 1000, maxMs: 10 }, /maxMs \(10\) is below stepMs/],
    [{ deadlineMs: 10, action: 'raise-downtime', then: 'raise-downtime' }, /then must be/],
    [null, /must be an object/],
  ])('rejects %j', (input, message) => {
    expect(() => validateWatchdog(input as WatchdogOptions)).toThrow(InvalidArgumentError);
    expect(() => validateWatchdog(input as WatchdogOptions)).toThrow(message);
  });
});
