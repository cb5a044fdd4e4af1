/** QmpClient against the scripted fake server: what a real QEMU will not do on demand. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QueueOverflowError } from '../../src/common/bounded-queue.js';
import { InvalidArgumentError } from '../../src/common/errors.js';
import {
  MessageTooLargeError,
  QmpClient,
  QmpClosedError,
  QmpProtocolError,
  QmpTimeoutError,
  StreamTransport,
  type QmpEvent,
  type QmpMessage,
} from '../../src/qmp/index.js';
import { FakeQmpServer, type FakeCall } from '../../src/testing/index.js';

const servers: FakeQmpServer[] = [];
const clients: QmpClient[] = [];

async function serve(options: Parameters<typeof FakeQmpServer.start>[0] = {}): Promise<FakeQmpServer> {
  const s = await FakeQmpServer.start(options);
  servers.push(s);
  return s;
}
function track<T extends QmpClient>(c: T): T {
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) await s.close();
});

const echo = (args: Record<string, unknown> | undefined) => ({ return: args ?? {} });

describe('QmpClient against the fake QMP server', () => {
  it('accepts an event before the greeting', async () => {
    const server = await serve({ onConnection: (conn) => conn.sendEvent('EARLY', { n: 1 }) });
    const client = track(new QmpClient(new StreamTransport(server.target)));
    const seen: QmpEvent<string, unknown>[] = [];
    client.on('event', (e) => seen.push(e));
    await client.open();
    expect(seen.map((e) => [e.event, e.data])).toEqual([['EARLY', { n: 1 }]]);
    expect(seen[0]!.timestamp.seconds).toBeGreaterThan(0);
  });

  it('accepts an event between qmp_capabilities and its reply, and later replies are not shifted', async () => {
    const server = await serve({
      commands: {
        qmp_capabilities: (_a, call) => {
          call.connection.sendEvent('BETWEEN');
          return { return: {} };
        },
        echo,
      },
    });
    const client = track(new QmpClient(new StreamTransport(server.target)));
    const events = client.events();
    await client.open();
    expect((await events.next()).value?.event).toBe('BETWEEN');
    expect(await client.execute('echo', { n: 1 })).toEqual({ n: 1 });
    expect(await client.execute('echo', { n: 2 })).toEqual({ n: 2 });
  });

  it('matches replies that arrive out of order', async () => {
    const held: FakeCall[] = [];
    const server = await serve({
      commands: {
        hold: (_args, call) => {
          held.push(call);
          if (held.length === 3) for (const c of [...held].reverse()) c.reply({ return: (c.message.arguments as { n: number }).n });
          return undefined;
        },
      },
    });
    const client = track(await QmpClient.connect(server.target));
    const order: number[] = [];
    const results = await Promise.all([1, 2, 3].map((n) => client.execute('hold', { n }).then((r) => (order.push(n), r))));
    expect(results).toEqual([1, 2, 3]);
    expect(order).toEqual([3, 2, 1]);
  });

  it('handles a greeting and replies split at every byte, with multi-byte UTF-8', async () => {
    const text = 'grüße 😀 — 日本語';
    const server = await serve({
      greet: false,
      onConnection: (conn) =>
        void conn.sendSplit(`${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'x' }, capabilities: [] } })}\r\n`),
      commands: {
        utf8: (_a, call) => {
          void call.connection.sendSplit(`${JSON.stringify({ return: text, id: call.id })}\r\n`).then(() => (call.connection.outstanding = 0));
          return undefined;
        },
      },
    });
    const client = track(await QmpClient.connect(server.target));
    expect(client.greeting.version.package).toBe('x');
    expect(await client.execute('utf8')).toBe(text);
  });

  it('skips an 11 MiB line with MessageTooLargeError and stays in sync', async () => {
    const server = await serve({
      commands: {
        big: (_a, call) => {
          call.connection.sendRaw(`{"event":"HUGE","data":{"x":"${'x'.repeat(11 * 1024 * 1024)}"}}\r\n`);
          return { return: 'after' };
        },
      },
    });
    const client = track(await QmpClient.connect(server.target));
    const problems: Error[] = [];
    client.on('protocolError', (e) => problems.push(e));
    const events: string[] = [];
    client.on('event', (e) => events.push(e.event));
    expect(await client.execute('big')).toBe('after');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toBeInstanceOf(MessageTooLargeError);
    expect(events).toEqual([]);
    expect(await client.execute('query-status')).toMatchObject({ running: true });
  });

  it('honours a smaller maxMessageBytes', async () => {
    const server = await serve({ commands: { echo } });
    const client = track(await QmpClient.connect(server.target, { maxMessageBytes: 1000 }));
    const problems: Error[] = [];
    client.on('protocolError', (e) => problems.push(e));
    expect(client.transport.capabilities.maxMessageBytes).toBe(1000);
    // The reply is skipped, and its caller is told so at once (its id is read from the line's end).
    const t0 = Date.now();
    const lost = await client.execute('echo', { s: 'y'.repeat(2000) }, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(MessageTooLargeError);
    expect((lost as MessageTooLargeError).limitBytes).toBe(1000);
    expect((lost as MessageTooLargeError).hint).toContain('maxMessageBytes');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(problems[0]).toBe(lost);
    expect(client.pendingCount).toBe(0);
    expect(await client.execute('echo', { s: 'small' })).toEqual({ s: 'small' });
  });

  it('reports a garbage line and an id-less error as protocol errors and carries on', async () => {
    const server = await serve({
      commands: {
        messy: (_a, call) => {
          call.connection.sendRaw('this is { not json\r\n');
          call.connection.send({ error: { class: 'GenericError', desc: 'JSON parse error, invalid keyword' } });
          return { return: 'fine' };
        },
      },
    });
    const client = track(await QmpClient.connect(server.target));
    const problems: Error[] = [];
    client.on('protocolError', (e) => problems.push(e));
    expect(await client.execute('messy')).toBe('fine');
    expect(problems).toHaveLength(2);
    expect(problems.every((p) => p instanceof QmpProtocolError)).toBe(true);
    expect(problems[1]!.message).toContain('without an id');
  });

  it('times out a server that never greets and closes the connection', async () => {
    const server = await serve({ greet: false });
    const connected = server.nextConnection();
    const err = await QmpClient.connect(server.target, { handshakeTimeoutMs: 150 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpTimeoutError);
    expect((err as QmpTimeoutError).message).toContain('handshake');
    const conn = await connected;
    await expect.poll(() => conn.closed).toBe(true);
  });

  it('drops a reply with an unknown id and logs it', async () => {
    const warnings: { message: string; details: Record<string, unknown> | undefined }[] = [];
    const server = await serve({
      commands: {
        confuse: (_a, call) => {
          call.connection.send({ return: 'stray', id: 'not-ours' });
          call.connection.send({ return: 'stray2', id: 12345 });
          return { return: 'mine' };
        },
      },
    });
    const client = track(await QmpClient.connect(server.target, { logger: { warn: (message, details) => warnings.push({ message, details }) } }));
    expect(await client.execute('confuse')).toBe('mine');
    expect(warnings.filter((w) => w.message.includes('unknown id')).map((w) => w.details?.id)).toEqual(['not-ours', 12345]);
  });

  it('keeps at most 8 in-band commands in flight on the wire (and respects maxInFlight)', async () => {
    const slow = async () => {
      await new Promise((r) => setTimeout(r, 5));
      return { return: 'ok' };
    };
    const server = await serve({ commands: { slow } });
    const connected = server.nextConnection();
    const client = track(await QmpClient.connect(server.target));
    const conn = await connected;
    const results = await Promise.all(Array.from({ length: 60 }, () => client.execute('slow')));
    expect(results.every((r) => r === 'ok')).toBe(true);
    expect(conn.maxOutstanding).toBe(8);

    const connected3 = server.nextConnection();
    const client3 = track(await QmpClient.connect(server.target, { maxInFlight: 3 }));
    const conn3 = await connected3;
    await Promise.all(Array.from({ length: 20 }, () => client3.execute('slow')));
    expect(conn3.maxOutstanding).toBe(3);
  });

  it('sends exec-oob past the in-flight cap when oob is negotiated', async () => {
    const held: FakeCall[] = [];
    const server = await serve({
      capabilities: ['oob'],
      commands: {
        hold: (_a, call) => void held.push(call),
        'oob-cmd': (_a, call) => ({ return: call.oob ? 'oob' : 'in-band' }),
      },
    });
    const connected = server.nextConnection();
    const client = track(await QmpClient.connect(server.target, { oob: true }));
    const conn = await connected;
    expect(conn.oobEnabled).toBe(true);
    const blocked = Array.from({ length: 8 }, () => client.execute('hold'));
    await expect.poll(() => held.length).toBe(8);
    expect(await client.execute('oob-cmd', undefined, { oob: true })).toBe('oob');
    expect(conn.received.at(-1)).toMatchObject({ 'exec-oob': 'oob-cmd' });
    for (const c of held) c.reply({ return: 1 });
    await Promise.all(blocked);
  });

  it('does not ask for oob unless asked, even when offered', async () => {
    const server = await serve({ capabilities: ['oob'] });
    const connected = server.nextConnection();
    const client = track(await QmpClient.connect(server.target));
    const conn = await connected;
    expect(client.oobEnabled).toBe(false);
    expect(conn.received[0]).toEqual({ execute: 'qmp_capabilities', id: expect.any(String) });
  });

  it('timeout while queued and abort while queued remove the call without sending it', async () => {
    const held: FakeCall[] = [];
    const server = await serve({ commands: { hold: (_a, call) => void held.push(call) } });
    const connected = server.nextConnection();
    const client = track(await QmpClient.connect(server.target, { maxInFlight: 1 }));
    const conn = await connected;
    const first = client.execute('hold');
    const ac = new AbortController();
    const queued = client.execute('hold', { n: 2 }, { signal: ac.signal });
    const timedOut = client.execute('hold', { n: 3 }, { timeoutMs: 50 });
    ac.abort(new Error('stop'));
    await expect(queued).rejects.toThrow('stop');
    await expect(timedOut).rejects.toBeInstanceOf(QmpTimeoutError);
    held[0]!.reply({ return: 'first' });
    expect(await first).toBe('first');
    expect(conn.received.filter((m) => m.execute === 'hold')).toHaveLength(1);
  });

  it('per-call timeouts share one deadline timer: a later, shorter deadline still fires on time, and it re-arms', async () => {
    const held: FakeCall[] = [];
    const server = await serve({ commands: { hold: (_a, call) => void held.push(call), echo } });
    const client = track(await QmpClient.connect(server.target, { timeoutMs: 5_000 }));
    const t0 = performance.now();
    const long = client.execute('hold', { n: 1 }); // default 5 s deadline arms the timer first
    const short = client.execute('hold', { n: 2 }, { timeoutMs: 80 }); // earlier deadline: must re-arm
    const answered = client.execute('hold', { n: 3 }, { timeoutMs: 400 });
    await vi.waitFor(() => expect(held).toHaveLength(3));
    held[2]!.reply({ return: 'in time' });
    expect(await answered).toBe('in time');
    await expect(short).rejects.toBeInstanceOf(QmpTimeoutError);
    const shortElapsed = performance.now() - t0;
    expect(shortElapsed).toBeGreaterThanOrEqual(75);
    expect(shortElapsed).toBeLessThan(2_000);
    // After firing, the timer re-arms for the next deadline: a fresh short call times out too.
    const t1 = performance.now();
    await expect(client.execute('hold', { n: 4 }, { timeoutMs: 60 })).rejects.toBeInstanceOf(QmpTimeoutError);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(55);
    // The long call is still pending and still answerable; other commands keep working.
    held[0]!.reply({ return: 'late but within 5 s' });
    expect(await long).toBe('late but within 5 s');
    expect(await client.execute('echo', { x: 1 })).toEqual({ x: 1 });
  });

  it('events(): bounded per-subscriber queue with explicit overflow, filter and names', async () => {
    const server = await serve({
      commands: {
        burst: (args, call) => {
          for (let i = 0; i < (args?.n as number); i++) call.connection.sendEvent(i % 2 ? 'ODD' : 'EVEN', { i });
          return { return: {} };
        },
      },
    });
    const client = track(await QmpClient.connect(server.target));
    const small = client.events({ bufferSize: 2 });
    const dropOldest = client.events({ bufferSize: 3, overflow: 'drop-oldest' });
    const odds = client.events({ names: ['ODD'], filter: (e) => (e.data as { i: number }).i > 3 });
    await client.execute('burst', { n: 10 });
    const got: number[] = [];
    const overflow = await (async () => {
      try {
        for await (const e of small) got.push((e.data as { i: number }).i);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(got).toEqual([0, 1]);
    expect(overflow).toBeInstanceOf(QueueOverflowError);
    expect((overflow as QueueOverflowError).dropped).toBe(8);
    expect(dropOldest.dropped).toBe(7);
    expect((await dropOldest.next()).value?.data).toEqual({ i: 7 });
    expect((await odds.next()).value?.data).toEqual({ i: 5 });
    expect((await odds.next()).value?.data).toEqual({ i: 7 });
    expect((await odds.next()).value?.data).toEqual({ i: 9 });
    await odds.return();
    await dropOldest.return();
  });

  it('waitForEvent: match, timeout and abort; executeAndWait sees an event sent before the reply', async () => {
    const server = await serve({
      commands: {
        job: (args, call) => {
          call.connection.sendEvent('JOB_STATUS_CHANGE', { id: 'other', status: 'concluded' });
          call.connection.sendEvent('JOB_STATUS_CHANGE', { id: args?.id, status: 'concluded' });
          return { return: {} };
        },
      },
    });
    const client = track(await QmpClient.connect(server.target));
    const { event } = await client.executeAndWait('job', { id: 'j1' }, {
      name: 'JOB_STATUS_CHANGE',
      match: (e) => (e.data as { id?: string } | undefined)?.id === 'j1',
    });
    expect(event.data).toEqual({ id: 'j1', status: 'concluded' });
    await expect(client.waitForEvent('NEVER', { timeoutMs: 50 })).rejects.toBeInstanceOf(QmpTimeoutError);
    await expect(client.waitForEvent('NEVER', { timeoutMs: 0, signal: AbortSignal.timeout(30) })).rejects.toThrow();
    // A failed command cancels its wait.
    await expect(client.executeAndWait('missing', undefined, { name: 'X' })).rejects.toMatchObject({ errorClass: 'CommandNotFound' });
  });

  it('validators run before sending, in order, with the per-call options; a throw rejects and nothing is sent; use() adds and removes', async () => {
    const server = await serve({ commands: { echo } });
    const connected = server.nextConnection();
    const seen: string[] = [];
    const client = track(
      await QmpClient.connect(server.target, {
        validators: [
          {
            validate({ command, args, options }) {
              seen.push(`${command} timeoutMs=${String(options.timeoutMs)}`);
              if (args?.bad) throw new InvalidArgumentError(`bad args for ${command}`);
            },
          },
        ],
      }),
    );
    const conn = await connected;
    const before = conn.received.length;
    await expect(client.execute('echo', { bad: true }, { timeoutMs: 500 })).rejects.toThrow('bad args for echo');
    expect(conn.received.length).toBe(before);
    expect(await client.execute('echo', { ok: 1 })).toEqual({ ok: 1 });
    const remove = client.use({ validate: async ({ command }) => Promise.reject(new Error(`async no to ${command}`)) });
    await expect(client.execute('echo')).rejects.toThrow('async no to echo');
    remove();
    const replies: unknown[] = [];
    client.use({ checkReply: (_call, value) => void replies.push(value) });
    expect(await client.execute('echo', { n: 3 })).toEqual({ n: 3 });
    expect(replies).toEqual([{ n: 3 }]);
    expect(seen).toEqual(['echo timeoutMs=500', 'echo timeoutMs=undefined', 'echo timeoutMs=undefined', 'echo timeoutMs=undefined']);
    expect(() => client.use({} as never)).toThrow(InvalidArgumentError);
  });

  it('redacts secrets at any depth in traffic logs, while the server gets the real values', async () => {
    const server = await serve({ commands: { set_password: () => ({ return: {} }), 'object-add': () => ({ return: {} }), echo } });
    const connected = server.nextConnection();
    const logged: string[] = [];
    const client = track(await QmpClient.connect(server.target, { onTraffic: (dir, m) => logged.push(`${dir} ${JSON.stringify(m)}`) }));
    const conn = await connected;
    await client.execute('set_password', { protocol: 'vnc', password: 'hunter2' });
    await client.execute('object-add', { 'qom-type': 'secret', id: 's0', data: 'opensesame' });
    const nested = { deep: [{ auth: { 'new-secret': 'x1', passphrase: 'x2', keep: 'visible' } }] };
    await client.execute('echo', nested);
    const all = logged.join('\n');
    for (const secret of ['hunter2', 'opensesame', 'x1', 'x2']) expect(all).not.toContain(secret);
    expect(all).toContain('<redacted>');
    expect(all).toContain('visible');
    expect(logged.some((l) => l.startsWith('in '))).toBe(true);
    const received = JSON.stringify(conn.received);
    for (const secret of ['hunter2', 'opensesame', 'x1', 'x2']) expect(received).toContain(secret);
  });

  it('connect() on a subclass returns the subclass; invalid targets and options are refused', async () => {
    class MyClient extends QmpClient {
      hello(): string {
        return 'hi';
      }
    }
    const server = await serve();
    const mine = track(await MyClient.connect(server.target));
    expect(mine).toBeInstanceOf(MyClient);
    expect(mine.hello()).toBe('hi');
    await expect(QmpClient.connect({ path: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(QmpClient.connect({ host: 'localhost', port: 70000 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(QmpClient.connect({} as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(QmpClient.connect(server.target, { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(mine.execute('' as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(mine.execute('echo', [] as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('when the server drops the connection every pending call rejects with QmpClosedError', async () => {
    const server = await serve({ commands: { hold: () => undefined } });
    const connected = server.nextConnection();
    const client = track(await QmpClient.connect(server.target, { timeoutMs: 0 }));
    const conn = await connected;
    const calls = Array.from({ length: 12 }, () => client.execute('hold'));
    await expect.poll(() => conn.received.length).toBe(1 + 8);
    conn.destroy();
    for (const r of await Promise.allSettled(calls)) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QmpClosedError);
    }
    expect(client.runstate === 'closing' || client.runstate === 'closed').toBe(true);
  });

  it('close() rejects pending calls with reason "closed by the client" and ends subscriptions quietly', async () => {
    const server = await serve({ commands: { hold: () => undefined } });
    const client = track(await QmpClient.connect(server.target, { timeoutMs: 0 }));
    const events = client.events();
    const call = client.execute('hold').catch((e: unknown) => e);
    await client.close();
    expect(await call).toMatchObject({ reason: 'closed by the client' });
    expect(await events.next()).toEqual({ value: undefined, done: true });
    expect(client.runstate).toBe('closed');
    await client.close(); // idempotent
    await expect(client.open()).rejects.toThrow(/runstate "closed"/);
  });

  it('records every message it sends with a distinct id', async () => {
    const server = await serve({ commands: { echo } });
    const out: QmpMessage[] = [];
    const client = track(await QmpClient.connect(server.target, { onTraffic: (d, m) => d === 'out' && out.push(m) }));
    await Promise.all(Array.from({ length: 100 }, (_, i) => client.execute('echo', { i })));
    expect(new Set(out.map((m) => m.id)).size).toBe(out.length);
  });
});
