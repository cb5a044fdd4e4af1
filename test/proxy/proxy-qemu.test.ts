/** The QMP proxy in front of a real bare QEMU, with real clients: raw sockets, socat, and our own QmpClient. */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OwnershipPolicy } from '../../src/hybrid/policy.js';
import { GuestQmpClient } from '../../src/hybrid/guest-client.js';
import { POLICY_ERROR_CLASS, ProxyError, QmpProxy } from '../../src/proxy/index.js';
import { QmpClient, QmpCommandError, StreamTransport } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { waitFor } from '../harness/wait.js';
import { RawQmp } from './raw-client.js';

const run = promisify(execFile);

let qemu: QemuInstance;
let backend: QmpClient;
let dir: string;
let proxy: QmpProxy;
const logs: string[] = [];
const open: { close(): unknown }[] = [];

beforeAll(async () => {
  qemu = await startQemu();
  backend = await QmpClient.connect({ path: qemu.qmpPath });
  dir = mkdtempSync(join(tmpdir(), 'lq-proxy-'));
  proxy = await QmpProxy.start(backend, {
    listen: join(dir, 'run', 'p.sock'),
    logger: { warn: (m) => logs.push(m), info: (m) => logs.push(m) },
  });
});
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
afterAll(async () => {
  await proxy?.close();
  await backend?.close();
  await qemu?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Connects a plain socket to `path` and resolves with the number of bytes that arrived before the
 * server closed the connection; rejects if the server keeps it open past the deadline.
 */
function bytesBeforeServerCloses(path: string, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let bytes = 0;
    const timer = setTimeout(() => {
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms (${bytes} bytes received)`));
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', () => undefined); // a reset is one way of being turned away; 'close' follows
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(bytes);
    });
  });
}

/**
 * A negotiated client that can stop reading for real: with `onread`, pause() stops reading the socket
 * itself, so what the proxy writes afterwards stays unread in the kernel. A unix socket closed with
 * unread data resets its peer (ECONNRESET at the proxy), as the socket of a client killed mid-command does.
 */
async function stallableClient(path: string): Promise<{ socket: Socket; text(): string }> {
  let text = '';
  const socket = connect({
    path,
    onread: {
      buffer: Buffer.alloc(64 * 1024),
      callback: (n: number, buf: Uint8Array) => {
        text += Buffer.from(buf.buffer, buf.byteOffset, n).toString('utf8');
        return true;
      },
    },
  });
  socket.on('error', () => undefined);
  open.push({ close: () => socket.destroy() });
  await waitFor('the greeting', () => text.includes('"QMP"'), { timeoutMs: 5000 });
  socket.write('{"execute":"qmp_capabilities","id":"neg"}\n');
  await waitFor('the qmp_capabilities reply', () => /"id":\s*"neg"/.test(text), { timeoutMs: 5000 });
  return { socket, text: () => text };
}

async function raw(options?: { negotiate?: boolean }): Promise<RawQmp> {
  const c = await RawQmp.connect(proxy.path, options);
  open.push(c);
  return c;
}

describe('QmpProxy on a bare QEMU', () => {
  it('creates its socket 0600 in a new 0700 directory, and refuses a directory others can enter', async () => {
    expect(statSync(proxy.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o755);
    await expect(QmpProxy.start(backend, { listen: join(shared, 'x.sock') })).rejects.toThrow(ProxyError);
    await expect(QmpProxy.start(backend, { listen: join(shared, 'x.sock') })).rejects.toThrow(/accessible to others/);
    // the same path twice: the live one is not stolen
    await expect(QmpProxy.start(backend, { listen: proxy.path })).rejects.toThrow(/already listening/);
  });

  it('greets with the real QEMU version and negotiates locally, with QEMU\'s own errors', async () => {
    const c = await raw({ negotiate: false });
    expect(c.messages[0]).toEqual({ QMP: { version: backend.greeting.version, capabilities: [] } });
    expect((c.messages[0] as { QMP: { version: { qemu: { major: number } } } }).QMP.version.qemu.major).toBe(7);
    expect(await c.call('query-status', 1)).toEqual({ id: 1, error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
    expect(await c.call('qmp_capabilities', 2, { enable: ['oob'] })).toEqual({ id: 2, error: { class: 'GenericError', desc: "Capability 'oob' not available" } });
    expect(await c.call('qmp_capabilities', 3)).toEqual({ id: 3, return: {} });
    expect(await c.call('qmp_capabilities', 4)).toEqual({ id: 4, error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' } });
    c.send('garbage\n');
    expect(await c.next((m) => 'error' in m && !('id' in m))).toMatchObject({ error: { class: 'GenericError', desc: expect.stringMatching(/^JSON parse error/) } });
    c.send({ id: 5 });
    expect(await c.next((m) => m.id === 5)).toEqual({ id: 5, error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" } });
    c.send({ execute: 'query-status', arguments: [], id: 6 });
    expect(await c.next((m) => m.id === 6)).toEqual({ id: 6, error: { class: 'GenericError', desc: "QMP input member 'arguments' must be an object" } });
    c.send({ execute: 'query-status', control: {}, id: 8 });
    expect(await c.next((m) => m.id === 8)).toEqual({ id: 8, error: { class: 'GenericError', desc: "QMP input member 'control' is unexpected" } });
    c.send({ execute: 5, id: 9 });
    expect(await c.next((m) => m.id === 9)).toEqual({ id: 9, error: { class: 'GenericError', desc: "QMP input member 'execute' must be a string" } });
    // QEMU's own errors pass through with their class
    expect(await c.call('no-such-command', 7)).toEqual({ id: 7, error: { class: 'CommandNotFound', desc: 'The command no-such-command has not been found' } });
  });

  it('preserves every kind of client id, and none when the client sent none', async () => {
    const c = await raw();
    for (const id of [42, 'abc', { a: [1, null] }, null, 'libqemu-1']) {
      const reply = await c.call('query-status', id);
      expect(reply.id).toEqual(id);
      expect(reply.return).toMatchObject({ status: 'running' });
    }
    c.send({ execute: 'query-version' });
    const noId = await c.next((m) => 'return' in m && !('id' in m));
    expect(noId.return).toMatchObject({ qemu: { major: 7 } });
  });

  it('pipelines: 40 commands in one write, 40 replies with their ids, in order', async () => {
    const c = await raw();
    c.send(Array.from({ length: 40 }, (_, i) => JSON.stringify({ execute: i % 2 ? 'query-status' : 'query-version', id: `p${i}` })).join('\n') + '\n');
    await c.next((m) => m.id === 'p39');
    const ids = c.messages.filter((m) => typeof m.id === 'string' && m.id.startsWith('p')).map((m) => m.id);
    expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => `p${i}`));
  });

  it('keeps a client that pipelines a lot from making the others wait behind its whole pipeline', async () => {
    const flooder = await raw();
    const other = await raw();
    flooder.send(Array.from({ length: 120 }, (_, i) => JSON.stringify({ execute: 'query-commands', id: i })).join('\n') + '\n');
    await flooder.next((m) => m.id === 0, 20_000);
    const reply = await other.call('query-status', 'mine');
    expect(reply).toMatchObject({ return: { status: 'running' } });
    // at most the flooder's in-flight limit (8) went ahead of us, not its 120-command pipeline
    const before = flooder.messages.filter((m) => typeof m.id === 'number').length;
    expect(before).toBeLessThan(60);
    await flooder.next((m) => m.id === 119, 30_000);
    expect(flooder.messages.filter((m) => typeof m.id === 'number').map((m) => m.id)).toEqual(Array.from({ length: 120 }, (_, i) => i));
  });

  it('serves two clients at once with interleaved commands, and fans every event out to both', async () => {
    const a = await raw();
    const b = await raw();
    const replies = await Promise.all([a.call('stop', 'a1'), b.call('query-status', 'b1'), a.call('cont', 'a2'), b.call('query-version', 'b2')]);
    expect(replies.map((r) => r.id)).toEqual(['a1', 'b1', 'a2', 'b2']);
    expect(replies.every((r) => 'return' in r)).toBe(true);
    for (const c of [a, b]) {
      await c.next((m) => m.event === 'RESUME');
      expect(c.events().map((e) => e.event)).toEqual(['STOP', 'RESUME']);
      expect(c.events('STOP')[0]).toMatchObject({ timestamp: { seconds: expect.any(Number), microseconds: expect.any(Number) } });
    }
    // a client still negotiating gets no events (as with QEMU)
    const late = await raw({ negotiate: false });
    await a.call('stop', 'a3');
    await a.call('cont', 'a4');
    await b.next((m) => m.event === 'RESUME' && b.events('RESUME').length === 2);
    // Events are fanned out to every client at once, so any wrongly sent to `late` were written
    // before the reply to the negotiation it sends now: none may precede that reply.
    expect(await late.call('qmp_capabilities', 'late-neg')).toEqual({ id: 'late-neg', return: {} });
    const beforeReply = late.messages.slice(0, late.messages.findIndex((m) => m.id === 'late-neg'));
    expect(beforeReply.filter((m) => 'event' in m)).toEqual([]);
  });

  it('serves ten of our own QmpClients at once: commands interleaved, events to all ten', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => QmpClient.connect({ path: proxy.path })));
    open.push(...clients);
    expect(clients.every((c) => c.greeting.version.qemu.major === 7)).toBe(true);
    const resumed = clients.map((c) => c.waitForEvent('RESUME', { timeoutMs: 5000 }));
    const stopped = clients.map((c) => c.waitForEvent('STOP', { timeoutMs: 5000 }));
    const work = clients.flatMap((c, i) => Array.from({ length: 10 }, (_, j) => c.execute(j % 2 ? 'query-status' : 'query-name').then((r) => ({ i, r }))));
    await clients[3]!.execute('stop');
    await clients[7]!.execute('cont');
    const results = await Promise.all(work);
    expect(results).toHaveLength(100);
    expect(results.filter((x) => x.i === 5)).toHaveLength(10);
    await Promise.all([...stopped, ...resumed]);
    expect(proxy.clientCount).toBeGreaterThanOrEqual(10);
  });

  it('works with socat: a shell pipeline gets the greeting and its replies', async () => {
    const { stdout } = await run('sh', ['-c', `printf '%s\\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-status","id":"s1"}' | socat -t 2 - UNIX-CONNECT:${proxy.path}`], { timeout: 10_000 });
    const lines = stdout.trim().split(/\r?\n/).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toHaveProperty('QMP.version.qemu.major', 7);
    expect(lines[1]).toEqual({ return: {} });
    expect(lines[2]).toMatchObject({ id: 's1', return: { status: 'running', running: true } });
  });

  it('a client that disconnects mid-command does not disturb the others; its late reply is dropped', async () => {
    // A proxy of its own, so its debug lines are this test's alone and its clients are numbered 1 (a) and 2 (b).
    const lines: string[] = [];
    const record = (m: string) => lines.push(m);
    const p = await QmpProxy.start(backend, { listen: join(dir, 'run', 'late.sock'), logger: { debug: record, info: record, warn: record } });
    try {
      const a = await stallableClient(p.path);
      const b = await RawQmp.connect(p.path);
      open.push(b);
      expect(lines.filter((l) => /^proxy client \d+ connected$/.test(l))).toEqual(['proxy client 1 connected', 'proxy client 2 connected']);
      await waitFor('no command pending on the backend', () => backend.pendingCount === 0, { timeoutMs: 5000 }); // nothing left over from earlier tests
      a.socket.pause();
      process.kill(qemu.pid, 'SIGSTOP'); // QEMU cannot answer now: both commands stay in flight
      try {
        // the proxy answers the garbage line itself; a leaves that answer unread, so its close resets the connection
        a.socket.write('garbage\n{"execute":"query-status","id":"gone"}\n');
        b.send({ execute: 'query-version', id: 'stays' });
        // both relayed and written to QEMU, neither answered
        await waitFor('both commands in flight', () => p.stats.commands === 2 && backend.pendingCount === 2, { timeoutMs: 5000 });
        expect(a.text()).not.toContain('"gone"');
        a.socket.destroy();
        await waitFor('the proxy to see the client leave', () => p.clientCount === 1, { timeoutMs: 5000 }); // the proxy saw a leave while its command was in flight
        expect(lines.filter((l) => /^proxy client \d+ left/.test(l))).toEqual([expect.stringMatching(/^proxy client 1 left: socket error: .*ECONNRESET/)]);
        // a's command was already sent: its id stays reserved in the backend until QEMU's reply
        expect(backend.pendingCount).toBe(2);
      } finally {
        process.kill(qemu.pid, 'SIGCONT');
      }
      expect(await b.next((m) => m.id === 'stays')).toMatchObject({ return: { qemu: { major: 7 } } });
      expect(await b.call('query-status', 'after')).toMatchObject({ return: { status: 'running' } });
      // the late reply to a's command arrived and was dropped: not delivered to b, logged for client 1 only
      await waitFor('no command pending on the backend', () => backend.pendingCount === 0, { timeoutMs: 5000 });
      expect(b.messages.some((m) => m.id === 'gone')).toBe(false);
      expect(lines.filter((l) => /^dropped a reply for proxy client \d+/.test(l))).toEqual(['dropped a reply for proxy client 1: it is gone']);
    } finally {
      await p.close();
    }
  });

  it('drops a client that stops reading, with a log line, and keeps serving the others', async () => {
    const small = await QmpProxy.start(backend, { listen: join(dir, 'run', 'small.sock'), maxClientOutputBytes: 64 * 1024, logger: { warn: (m) => logs.push(m) } });
    try {
      const sleeper = await RawQmp.connect(small.path);
      open.push(sleeper);
      const reader = await RawQmp.connect(small.path);
      open.push(reader);
      sleeper.socket.pause(); // stops reading: the kernel buffer fills, then the proxy's
      const burst = Array.from({ length: 400 }, (_, i) => JSON.stringify({ execute: 'query-commands', id: i })).join('\n') + '\n';
      sleeper.send(burst);
      const deadline = Date.now() + 20_000;
      while (small.stats.dropped === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(small.stats.dropped).toBe(1);
      expect(logs.some((l) => /proxy client \d+: dropping QMP client: it is not reading/.test(l))).toBe(true);
      // the dropped client's commands still queued in the backend were withdrawn, not run
      await waitFor('no command pending on the backend', () => backend.pendingCount === 0, { timeoutMs: 20_000 });
      expect(await reader.call('query-status', 'ok')).toMatchObject({ return: { status: 'running' } });
      expect(small.clientCount).toBe(1);
    } finally {
      await small.close();
    }
  });

  it('refuses through the ownership policy with a QMP error naming the libvirt API', async () => {
    const q = await startQemu();
    const policyClient = new GuestQmpClient(new StreamTransport({ path: q.qmpPath }), { guest: 'bare', route: 'monitor', policy: new OwnershipPolicy(), validate: false });
    await policyClient.open();
    const p = await QmpProxy.start(policyClient, { listen: join(dir, 'run', 'policy.sock') });
    try {
      const c = await RawQmp.connect(p.path);
      open.push(c);
      const refused = await c.call('device_del', 'd1', { id: 'nic0' });
      expect(refused).toMatchObject({ id: 'd1', error: { class: POLICY_ERROR_CLASS } });
      expect((refused.error as { desc: string }).desc).toMatch(/virDomainDetachDeviceFlags/);
      expect(await c.call('query-status', 'q1')).toMatchObject({ return: { status: 'running' } });
      // and our own client sees the class
      const ours = await QmpClient.connect({ path: p.path });
      open.push(ours);
      const err = await ours.execute('quit').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpCommandError);
      expect((err as QmpCommandError).errorClass).toBe(POLICY_ERROR_CLASS);
      expect(q.child.exitCode).toBeNull();
    } finally {
      await p.close();
      await policyClient.close();
      await q.stop();
    }
  });

  it('offers out-of-band execution when its backend negotiated it, and relays exec-oob', async () => {
    const q = await startQemu();
    const oobBackend = await QmpClient.connect({ path: q.qmpPath }, { oob: true });
    const p = await QmpProxy.start(oobBackend, { listen: join(dir, 'run', 'oob.sock') });
    try {
      const plain = await RawQmp.connect(p.path);
      open.push(plain);
      expect(plain.messages[0]).toMatchObject({ QMP: { capabilities: ['oob'] } });
      plain.send({ 'exec-oob': 'query-yank', id: 'x' });
      expect(await plain.next((m) => m.id === 'x')).toEqual({ id: 'x', error: { class: 'GenericError', desc: "QMP input member 'exec-oob' is unexpected" } });
      const c = await RawQmp.connect(p.path, { negotiate: false });
      open.push(c);
      expect(await c.call('qmp_capabilities', 'n', { enable: ['oob'] })).toEqual({ id: 'n', return: {} });
      c.send({ 'exec-oob': 'query-yank', id: 'o1' });
      expect(await c.next((m) => m.id === 'o1')).toMatchObject({ id: 'o1', return: expect.any(Array) });
    } finally {
      await p.close();
      await oobBackend.close();
      await q.stop();
    }
  });

  it('validates its options and turns clients beyond maxClients away with a log line', async () => {
    await expect(QmpProxy.start(backend, { listen: join(dir, 'run', 'v.sock'), maxClients: 0 })).rejects.toThrow(/maxClients must be a positive integer/);
    await expect(QmpProxy.start(backend, { listen: '' })).rejects.toThrow(ProxyError);
    await expect(QmpProxy.start(backend, { listen: `${dir}/${'x'.repeat(120)}.sock` })).rejects.toThrow(/longer than 107 bytes/);
    const warnings: string[] = [];
    const p = await QmpProxy.start(backend, { listen: join(dir, 'run', 'two.sock'), maxClients: 2, logger: { warn: (m) => warnings.push(m) } });
    try {
      const a = await RawQmp.connect(p.path);
      const b = await RawQmp.connect(p.path);
      open.push(a, b);
      // turned away at once: closed by the proxy without a single byte (no greeting)
      expect(await bytesBeforeServerCloses(p.path)).toBe(0);
      expect(warnings.some((w) => /turned a client away: 2 clients already connected/.test(w))).toBe(true);
      expect(await b.call('query-status', 1)).toMatchObject({ return: { status: 'running' } });
    } finally {
      await p.close();
    }
  });

  it('stops when the backend goes away: clients disconnected, socket removed', async () => {
    const q = await startQemu();
    const b = await QmpClient.connect({ path: q.qmpPath });
    const p = await QmpProxy.start(b, { listen: join(dir, 'run', 'gone.sock') });
    try {
      const c = await RawQmp.connect(p.path);
      open.push(c);
      await q.kill();
      expect(await p.done).toMatch(/backend/);
      await waitFor('the client to be closed', () => c.closed, { timeoutMs: 5000 });
      expect(() => statSync(p.path)).toThrow();
    } finally {
      await p.close();
      await q.stop();
    }
  });
});
