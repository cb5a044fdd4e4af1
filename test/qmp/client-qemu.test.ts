/** QmpClient against a real QEMU (`-machine none`), started by the test harness. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, LibqemuError } from '../../src/common/errors.js';
import {
  QmpClient,
  QmpClosedError,
  MessageTooLargeError,
  QmpCommandError,
  QmpTimeoutError,
  StreamTransport,
  type QmpMessage,
  type Runstate,
} from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

let qemu: QemuInstance;
let client: QmpClient;

beforeAll(async () => {
  qemu = await startQemu();
  client = await QmpClient.connect({ path: qemu.qmpPath }, { oob: true });
});

afterAll(async () => {
  await client?.close();
  await qemu?.stop();
});

describe('QmpClient against real QEMU', () => {
  it('reads the greeting and negotiates oob when offered and asked for', () => {
    expect(client.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
    expect(client.greeting.version.package).not.toBe('');
    expect(client.greeting.capabilities).toContain('oob');
    expect(client.oobEnabled).toBe(true);
    expect(client.runstate).toBe('running');
  });

  it('query-status resolves to the return value', async () => {
    const status = (await client.execute('query-status')) as { status: string; running: boolean };
    expect(status).toMatchObject({ status: 'running', running: true });
  });

  it('stop and cont deliver STOP and RESUME (executeAndWait subscribes before sending)', async () => {
    const seen = client.events({ names: ['STOP', 'RESUME'] });
    const stopped = await client.executeAndWait('stop', undefined, { name: 'STOP', timeoutMs: 5000 });
    expect(stopped.result).toEqual({});
    expect(stopped.event.event).toBe('STOP');
    expect(stopped.event.timestamp.seconds).toBeGreaterThan(1_600_000_000);
    expect(await client.execute('query-status')).toMatchObject({ status: 'paused', running: false });
    const resumed = await client.executeAndWait('cont', undefined, { name: 'RESUME', timeoutMs: 5000 });
    expect(resumed.event.event).toBe('RESUME');
    const a = await seen.next();
    const b = await seen.next();
    expect([a.value?.event, b.value?.event]).toEqual(['STOP', 'RESUME']);
    await seen.return();
    expect(await client.execute('query-status')).toMatchObject({ status: 'running' });
  });

  it('1,000 concurrent execute calls each get their own reply (ids, not order)', async () => {
    const all = (await client.execute('query-command-line-options')) as { option: string }[];
    const names = all.map((o) => o.option).filter((n) => n !== '');
    expect(names.length).toBeGreaterThan(10);
    const calls = Array.from({ length: 1000 }, (_, i) => {
      if (i % 10 === 7) return { option: `no-such-option-${i}`, ok: false };
      return { option: names[i % names.length]!, ok: true };
    });
    const results = await Promise.allSettled(calls.map((c) => client.execute('query-command-line-options', { option: c.option })));
    results.forEach((r, i) => {
      const call = calls[i]!;
      if (call.ok) {
        expect(r.status).toBe('fulfilled');
        expect((r as PromiseFulfilledResult<{ option: string }[]>).value[0]!.option).toBe(call.option);
      } else {
        expect(r.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as QmpCommandError;
        expect(err).toBeInstanceOf(QmpCommandError);
        expect(err.desc).toContain(call.option);
      }
    });
    expect(client.pendingCount).toBe(0);
  });

  it('surfaces CommandNotFound and GenericError as QmpCommandError with the class', async () => {
    const notFound = await client.execute('no-such-command').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(QmpCommandError);
    expect(notFound).toBeInstanceOf(LibqemuError);
    expect(notFound).toMatchObject({ errorClass: 'CommandNotFound', command: 'no-such-command' });
    expect((notFound as QmpCommandError).id).toMatch(/^\d+$/);
    expect((notFound as QmpCommandError).hint).toContain('query-commands');

    const generic = await client.execute('query-command-line-options', { option: 'bogus' }).catch((e: unknown) => e);
    expect(generic).toBeInstanceOf(QmpCommandError);
    expect(generic).toMatchObject({ errorClass: 'GenericError', command: 'query-command-line-options' });
    expect((generic as QmpCommandError).desc).toContain('bogus');
  });

  it('hmp() runs a human monitor command line', async () => {
    expect(await client.hmp('info status')).toContain('VM status: running');
    await expect(client.hmp('')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('exec-oob: an allow-oob command succeeds out of band; an in-band-only one is refused by QEMU', async () => {
    const yank = await client.execute('query-yank', undefined, { oob: true });
    expect(Array.isArray(yank)).toBe(true);
    const refused = await client.execute('query-status', undefined, { oob: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QmpCommandError);
    expect((refused as QmpCommandError).desc).toContain('does not support OOB');
  });

  it('without oob negotiated, { oob: true } is refused before sending', async () => {
    await client.close();
    client = await QmpClient.connect({ path: qemu.qmpPath });
    expect(client.oobEnabled).toBe(false);
    await expect(client.execute('query-yank', undefined, { oob: true })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('shows runstate transitions in order, and Symbol.asyncDispose closes', async () => {
    await client.close();
    const states: Runstate[] = [];
    {
      await using c = new QmpClient(new StreamTransport({ path: qemu.qmpPath }));
      c.on('runstate', (s) => states.push(s));
      expect(c.runstate).toBe('idle');
      await c.open();
      expect(await c.execute('query-status')).toMatchObject({ running: true });
    }
    expect(states).toEqual(['connecting', 'negotiating', 'running', 'closing', 'closed']);
    client = await QmpClient.connect({ path: qemu.qmpPath });
  });

  it('timeout: rejects with QmpTimeoutError, keeps the id reserved, drops the late reply', async () => {
    const debug: string[] = [];
    await client.close();
    client = await QmpClient.connect({ path: qemu.qmpPath }, { logger: { debug: (m) => debug.push(m) } });
    process.kill(qemu.pid, 'SIGSTOP');
    try {
      const err = await client.execute('query-status', undefined, { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpTimeoutError);
      expect((err as QmpTimeoutError).timeoutMs).toBe(100);
      expect(client.pendingCount).toBe(1); // reserved, not forgotten
    } finally {
      process.kill(qemu.pid, 'SIGCONT');
    }
    expect(await client.execute('query-status')).toMatchObject({ running: true });
    expect(client.pendingCount).toBe(0);
    expect(debug.some((m) => m.includes('late reply'))).toBe(true);
  });

  it('abort: rejects with the signal reason while QEMU is unresponsive', async () => {
    process.kill(qemu.pid, 'SIGSTOP');
    try {
      const ac = new AbortController();
      const call = client.execute('query-status', undefined, { signal: ac.signal, timeoutMs: 0 });
      setTimeout(() => ac.abort(new Error('user gave up')), 50);
      await expect(call).rejects.toThrow('user gave up');
      // An already aborted signal rejects at once, with its reason, without sending (nothing new pending).
      const pendingBefore = client.pendingCount;
      await expect(client.execute('query-status', undefined, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
      expect(client.pendingCount).toBe(pendingBefore);
    } finally {
      process.kill(qemu.pid, 'SIGCONT');
    }
    expect(await client.execute('query-status')).toMatchObject({ running: true });
  });

  it('a reply over maxMessageBytes rejects its own call at once with MessageTooLargeError; the rest carry on', async () => {
    // QEMU serves one client per monitor: the shared client steps aside meanwhile.
    await client.close();
    let schemaId: unknown;
    const small = await QmpClient.connect(
      { path: qemu.qmpPath },
      { maxMessageBytes: 4096, onTraffic: (dir, msg) => void (dir === 'out' && msg.execute === 'query-qmp-schema' && (schemaId = msg.id)) },
    );
    try {
      const [schema, status] = await Promise.allSettled([
        small.execute('query-qmp-schema', undefined, { timeoutMs: 30_000 }),
        small.execute('query-status'),
      ]);
      expect(schema.status).toBe('rejected');
      const err = (schema as PromiseRejectedResult).reason as MessageTooLargeError;
      expect(err).toBeInstanceOf(MessageTooLargeError);
      expect(err.receivedBytes).toBeGreaterThan(100_000);
      expect(err.id).toBe(schemaId); // read back from the skipped line's end
      expect(typeof schemaId).toBe('string');
      expect(status).toMatchObject({ status: 'fulfilled', value: { running: true } });
      expect(small.pendingCount).toBe(0);
    } finally {
      await small.close();
      client = await QmpClient.connect({ path: qemu.qmpPath }, { oob: true });
    }
  });

  it('connect to a missing socket fails with QmpClosedError and a hint', async () => {
    const err = await QmpClient.connect({ path: `${qemu.dir}/missing.sock` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpClosedError);
    expect((err as QmpClosedError).message).toContain('ENOENT');
    expect((err as QmpClosedError).hint).toContain('-qmp');
  });
});

describe('QEMU killed with SIGKILL mid-command', () => {
  it('rejects every pending call with QmpClosedError and ends event subscriptions', async () => {
    const victim = await startQemu();
    try {
      const traffic: QmpMessage[] = [];
      const c = await QmpClient.connect({ path: victim.qmpPath }, { timeoutMs: 0, onTraffic: (d, m) => d === 'out' && traffic.push(m) });
      const events = c.events();
      const waiting = c.waitForEvent('SHUTDOWN', { timeoutMs: 0 });
      // Freeze QEMU so the commands are really in flight (sent, unanswered) when it dies.
      process.kill(victim.pid, 'SIGSTOP');
      const calls = Array.from({ length: 20 }, () => c.execute('query-status'));
      const settled = Promise.allSettled(calls);
      await new Promise((r) => setTimeout(r, 50));
      expect(traffic.length).toBe(1 + 8); // qmp_capabilities + the in-flight cap; the rest queued
      await victim.kill('SIGKILL');
      const results = await settled;
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QmpClosedError);
      }
      await expect(waiting).rejects.toBeInstanceOf(QmpClosedError);
      await expect(events.next()).rejects.toBeInstanceOf(QmpClosedError);
      await c.waitForRunstate('closed', { timeoutMs: 5000 });
      await expect(c.execute('query-status')).rejects.toBeInstanceOf(QmpClosedError);
    } finally {
      await victim.stop();
    }
  });
});
