/**
 * The four traps koffi-real-libvirtd.md found against a real daemon, plus "a script using events exits on
 * its own". Each case runs in a child Node process (test/libvirt/fixtures/child.ts) so that the exit itself
 * (code, signal, time) is what is asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';
import { runChild } from './helpers.js';
import { qemuPid } from '../harness/guest-pid.js';

/** Generous: Node + tsx startup is not counted (measured from the child's last statement). */
const PROMPT_EXIT_MS = 3000;

let daemon: PrivateLibvirtd;

async function withGuest(d: PrivateLibvirtd, name: string): Promise<void> {
  const c = await Connection.open(d.uri);
  await c.createXML(tinyGuestXml({ name }));
  await c.close();
}

beforeAll(async () => {
  daemon = await startPrivateLibvirtd({ prefix: 'lvtr' });
  await withGuest(daemon, 'tr1');
  await withGuest(daemon, 'tr-stuck');
});
afterAll(async () => {
  await daemon?.stop();
});

describe('exit behaviour (child processes)', () => {
  it('a script that used events exits on its own, promptly', async () => {
    const r = await runChild(['events-natural', daemon.uri, 'tr1']);
    expect(r.stderr).toBe('');
    expect(r.lines.find((l) => 'events' in l)?.events).toEqual(['suspended', 'resumed', 'STOP', 'RESUME']);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
  });

  it('a consumer waiting for events keeps the process alive until they come', async () => {
    const c = await Connection.open(daemon.uri);
    try {
      const dom = await c.lookupDomain('tr1');
      const r = await runChild(['events-wait', daemon.uri, 'tr1'], (line) => {
        if (line.ready) setTimeout(() => void dom.suspend().then(() => dom.resume()), 1500);
      });
      expect(r.lines.find((l) => 'event' in l)?.event).toBe('suspended');
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
      expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
    } finally {
      await c.close();
    }
  });

  it('process.exit(3) while events stream in exits with 3, promptly (the loop thread is quit)', async () => {
    const c = await Connection.open(daemon.uri);
    const dom = await c.lookupDomain('tr1');
    let flowing = true;
    let cycling: Promise<void> = Promise.resolve();
    try {
      const r = await runChild(['exit-events-flowing', daemon.uri, 'tr1'], (line) => {
        if (!line.ready) return;
        cycling = (async () => {
          while (flowing) {
            await dom.suspend();
            await dom.resume();
          }
        })();
      });
      expect(r.lines.find((l) => 'seen' in l)?.seen).toBe(6);
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 3, signal: null });
      expect(r.stderr).not.toMatch(/FATAL ERROR/);
      expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
    } finally {
      flowing = false;
      await cycling;
      await c.close();
    }
  });

  it('process.exit(3) with calls in flight exits with 3 (drained, no SIGABRT)', async () => {
    const r = await runChild(['exit-inflight', daemon.uri, 'tr1']);
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 3, signal: null });
    expect(r.stderr).not.toMatch(/FATAL ERROR/);
    expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
  });

  it('an uncaught throw with calls in flight exits with 1 (drained, no SIGABRT)', async () => {
    const r = await runChild(['throw-inflight', daemon.uri, 'tr1']);
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 1, signal: null });
    expect(r.stderr).toContain('boom');
    expect(r.stderr).not.toMatch(/FATAL ERROR/);
    expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
  });

  it('process.exit while lanes are still starting (loading koffi) exits with 3, no SIGABRT', async () => {
    // at once, and a little later: the loading window moves with the machine's load
    for (const after of [0, 15, 30, 60, 120]) {
      const r = await runChild(['exit-starting', daemon.uri, '-'], undefined, 90_000, { EXIT_AFTER_MS: String(after) });
      expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 3, signal: null });
      expect(r.stderr).not.toMatch(/FATAL ERROR/);
    }
  });

  it('a script that served QMP with a PassthroughProxy and closed it exits on its own, promptly', async () => {
    const r = await runChild(['proxy-natural', daemon.uri, 'tr1']);
    expect(r.lines.find((l) => 'status' in l)?.status).toBe('running');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 0, signal: null });
    expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
  });

  it('process.exit while a PassthroughProxy thread is inside libvirt, or still starting, exits with 3, no SIGABRT', async () => {
    const cases: Record<string, string>[] = [{ EXIT_AFTER_MS: '300' }, { EXIT_AFTER_MS: '1000' }, ...[0, 50, 150, 400].map((ms) => ({ PROXY_STARTING: '1', EXIT_AFTER_MS: String(ms) }))];
    for (const env of cases) {
      const r = await runChild(['proxy-exit-inflight', daemon.uri, 'tr1'], undefined, 90_000, env);
      expect({ code: r.code, signal: r.signal, env }, r.stderr).toEqual({ code: 3, signal: null, env });
      expect(r.stderr).not.toMatch(/FATAL ERROR/);
      expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
    }
  });

  describe('a call stuck on a hung QEMU (SIGSTOP)', () => {
    it('misses its deadline with LibvirtTimeoutError; only its lane is retired, the connection stays open', async () => {
      const pid = qemuPid(daemon, 'tr-stuck');
      process.kill(pid, 'SIGSTOP');
      try {
        const r = await runChild(['stuck-deadline', daemon.uri, 'tr-stuck']);
        const err = r.lines.find((l) => 'error' in l)!;
        expect(err).toMatchObject({ error: 'VIR_ERR_OPERATION_TIMEOUT', name: 'LibvirtTimeoutError' });
        expect(err.after as number).toBeGreaterThanOrEqual(1400);
        expect(err.after as number).toBeLessThan(6000);
        // another lane answers at once; the stuck one was retired, not the connection
        expect(r.lines.find((l) => 'alive' in l)?.alive).toBe(true);
        expect(r.lines.find((l) => 'laneRetired' in l)?.laneRetired).toBe('invoke');
        expect(r.lines.some((l) => 'disconnected' in l)).toBe(false);
        expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
        expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    });

    it('does not block process.exit (socket shutdown in the exit hook)', async () => {
      const pid = qemuPid(daemon, 'tr-stuck');
      process.kill(pid, 'SIGSTOP');
      try {
        const r = await runChild(['stuck-exit', daemon.uri, 'tr-stuck']);
        expect({ code: r.code, signal: r.signal }).toEqual({ code: 3, signal: null });
        expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    });
  });

  it('the daemon dying with calls in flight: calls fail, "disconnected" fires, no deadlock', async () => {
    const d2 = await startPrivateLibvirtd({ prefix: 'lvpl' });
    try {
      await withGuest(d2, 'pl1');
      const r = await runChild(['peer-loss', d2.uri, 'pl1'], (line) => {
        if (line.ready) setTimeout(() => process.kill(d2.pid, 'SIGKILL'), 300);
      });
      const failed = r.lines.find((l) => 'failed' in l)!;
      expect((failed.failed as number[]).every((code) => [1, 6, 38, 39].includes(code))).toBe(true);
      expect(failed.alive).toBe(false);
      expect(r.lines.some((l) => 'disconnected' in l)).toBe(true);
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
      expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
    } finally {
      await d2.stop();
    }
  });

  it('close() while the daemon dies settles (the close callback is unregistered off the thread it runs on)', async () => {
    for (const spinUs of [0, 100, 300, 1000, 3000]) {
      const d = await startPrivateLibvirtd({ prefix: 'lvcr' });
      try {
        const r = await runChild(['close-race', d.uri, '-', String(d.pid), String(spinUs)]);
        const done = r.lines.find((l) => 'outcome' in l);
        expect(done?.outcome, `spin ${spinUs} µs`).toBe('closed');
        expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
        expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
      } finally {
        await d.stop();
      }
    }
  });

  it('keepalive drops a frozen daemon with many callers: every call settles, no stuck thread, no crash', async () => {
    const d3 = await startPrivateLibvirtd({ prefix: 'lvka' });
    let stopped = false;
    try {
      await withGuest(d3, 'ka1');
      const r = await runChild(['keepalive', d3.uri, 'ka1'], (line) => {
        if (line.ready) {
          setTimeout(() => {
            process.kill(d3.pid, 'SIGSTOP');
            stopped = true;
          }, 300);
        }
        if ('failed' in line) {
          // Only now let the daemon run again: libvirt 9.0 would segfault here with several RPCs in flight.
          process.kill(d3.pid, 'SIGCONT');
          stopped = false;
        }
      });
      const failed = r.lines.find((l) => 'failed' in l)!;
      expect((failed.failed as number[]).every((code) => [1, 6, 38].includes(code))).toBe(true);
      expect(r.lines.find((l) => 'disconnected' in l)?.disconnected).toMatch(/keepalive/);
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
      expect(r.exitAfterMarkMs).toBeLessThan(PROMPT_EXIT_MS);
    } finally {
      if (stopped) process.kill(d3.pid, 'SIGCONT');
      await d3.stop();
    }
  }, 90_000);
});
