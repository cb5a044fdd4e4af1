/**
 * QmpClient.executeTo, the relay's way of running a command (what the proxy uses), against a real QEMU:
 * the same outcomes as execute(), reported to a settler object instead of a promise, with the reply's
 * value handed over as QEMU's own text when the settler takes text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient, QmpClosedError, QmpCommandError, QmpTimeoutError, type CommandSettler, type QmpMessage } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

let qemu: QemuInstance;
let client: QmpClient;

beforeAll(async () => {
  qemu = await startQemu();
  client = await QmpClient.connect({ path: qemu.qmpPath });
});

afterAll(async () => {
  await client?.close();
  await qemu?.stop();
});

type Outcome = { kind: 'value'; value: unknown } | { kind: 'text'; text: string } | { kind: 'error'; error: unknown };

/** A settler that records how it was settled, and how often. */
function recorder(takesText: boolean): { settler: CommandSettler; outcomes: Outcome[]; settled: Promise<Outcome> } {
  const outcomes: Outcome[] = [];
  let done!: (o: Outcome) => void;
  const settled = new Promise<Outcome>((r) => (done = r));
  const record = (o: Outcome) => (outcomes.push(o), done(o));
  const settler: CommandSettler = {
    resolve: (value) => record({ kind: 'value', value }),
    reject: (error) => record({ kind: 'error', error }),
  };
  if (takesText) settler.resolveText = (text) => record({ kind: 'text', text });
  return { settler, outcomes, settled };
}

describe('QmpClient.executeTo against real QEMU', () => {
  it('hands a text-taking settler the return value exactly as QEMU wrote it (unparsed), and others the parsed value', async () => {
    const expected = await client.execute('query-version');
    const text = recorder(true);
    client.executeTo('query-version', undefined, {}, text.settler);
    const got = await text.settled;
    expect(got.kind).toBe('text');
    const raw = (got as { text: string }).text;
    // QEMU's own layout (a space after each colon and comma), not JSON.stringify's
    expect(raw).toMatch(/^\{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": ".*"\}$/);
    expect(JSON.parse(raw)).toEqual(expected);

    const parsed = recorder(false);
    client.executeTo('query-version', undefined, {}, parsed.settler);
    expect(await parsed.settled).toEqual({ kind: 'value', value: expected });
    expect([text.outcomes.length, parsed.outcomes.length]).toEqual([1, 1]);
  });

  it('rejects with QEMU\'s error as QmpCommandError, and an invalid call before sending', async () => {
    const r = recorder(true);
    client.executeTo('no-such-command', undefined, {}, r.settler);
    const got = (await r.settled) as { kind: 'error'; error: unknown };
    expect(got.error).toBeInstanceOf(QmpCommandError);
    expect((got.error as QmpCommandError).errorClass).toBe('CommandNotFound');

    const bad = recorder(true);
    client.executeTo('', undefined, {}, bad.settler);
    expect(bad.outcomes).toMatchObject([{ kind: 'error', error: { name: 'InvalidArgumentError' } }]);
  });

  it('with a traffic hook, every reply is parsed (the hook sees it) and the settler gets the value', async () => {
    const seen: QmpMessage[] = [];
    const q2 = await startQemu(); // QEMU serves one client per monitor socket
    const c = await QmpClient.connect({ path: q2.qmpPath }, { onTraffic: (dir, m) => void (dir === 'in' && seen.push(m)) });
    try {
      const r = recorder(true);
      c.executeTo('query-status', undefined, {}, r.settler);
      expect(await r.settled).toMatchObject({ kind: 'value', value: { running: true } });
      expect(seen.some((m) => 'return' in m && (m.return as { running?: unknown }).running === true)).toBe(true);
    } finally {
      await c.close();
      await q2.stop();
    }
  });

  it('a reply that never comes errors the command at its deadline; the signal stops only what has not been sent', async () => {
    const q = await startQemu();
    const c = await QmpClient.connect({ path: q.qmpPath }, { maxInFlight: 1 });
    try {
      const stopped = new AbortController();
      process.kill(q.pid, 'SIGSTOP'); // QEMU cannot answer now
      const sent = recorder(true);
      const queued = recorder(true);
      c.executeTo('query-status', undefined, { timeoutMs: 300, signal: stopped.signal }, sent.settler);
      c.executeTo('query-status', undefined, { signal: stopped.signal }, queued.settler); // behind the in-flight cap of 1
      stopped.abort(new Error('the relay\'s client left'));
      // the sent command is not withdrawn by the signal: it ends at its deadline
      const timedOut = (await sent.settled) as { kind: 'error'; error: unknown };
      expect(timedOut.error).toBeInstanceOf(QmpTimeoutError);
      expect(queued.outcomes).toEqual([]);
      process.kill(q.pid, 'SIGCONT');
      // once QEMU answers the late reply frees the slot; the queued command is then withdrawn, never sent
      const withdrawn = (await queued.settled) as { kind: 'error'; error: Error };
      expect(withdrawn.error.message).toBe('the relay\'s client left');
      expect(c.pendingCount).toBe(0);
      expect(await c.execute('query-status')).toMatchObject({ running: true });
    } finally {
      process.kill(q.pid, 'SIGCONT');
      await c.close();
      await q.stop();
    }
  });

  it('when QEMU goes away every pending command settles with QmpClosedError', async () => {
    const q = await startQemu();
    const c = await QmpClient.connect({ path: q.qmpPath }, { timeoutMs: 0 });
    try {
      process.kill(q.pid, 'SIGSTOP');
      const rs = [recorder(true), recorder(false), recorder(true)];
      for (const r of rs) c.executeTo('query-status', undefined, {}, r.settler);
      await q.kill('SIGKILL');
      const outcomes = await Promise.all(rs.map((r) => r.settled));
      for (const o of outcomes) expect((o as { error: unknown }).error).toBeInstanceOf(QmpClosedError);
      expect(rs.map((r) => r.outcomes.length)).toEqual([1, 1, 1]);
    } finally {
      await c.close();
      await q.stop();
    }
  });
});
