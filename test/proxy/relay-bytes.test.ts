/**
 * The proxy's replies are QEMU's own bytes: the same command sent to QEMU directly and through the proxy
 * (backed by a second monitor of the same QEMU) gets byte-identical reply lines, for ids of every kind
 * and for errors. The proxy passes QEMU's `return` text on with only the id rewritten, so nothing is lost
 * to a parse and re-serialisation (64-bit integers, member order, QEMU's spacing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpProxy } from '../../src/proxy/index.js';
import { QmpClient } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { waitFor } from '../harness/wait.js';

let qemu: QemuInstance;
let backend: QmpClient;
let proxy: QmpProxy;
let dir: string;

beforeAll(async () => {
  qemu = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'backend.sock')},server=on,wait=off`] });
  backend = await QmpClient.connect({ path: join(qemu.dir, 'backend.sock') }, { timeoutMs: 0 });
  dir = mkdtempSync(join(tmpdir(), 'lq-relay-bytes-'));
  proxy = await QmpProxy.start(backend, { listen: join(dir, 'run', 'p.sock') });
});

afterAll(async () => {
  await proxy?.close();
  await backend?.close();
  await qemu?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw client: sends lines, returns each reply line exactly as received (CRLF included). */
async function lineClient(path: string): Promise<{ exchange(line: string): Promise<string>; close(): void }> {
  const socket: Socket = connect(path);
  let buffered = '';
  let waiting: ((line: string) => void) | undefined;
  const lines: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buffered += d;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, nl + 1));
      buffered = buffered.slice(nl + 1);
    }
    if (waiting && lines.length > 0) {
      const w = waiting;
      waiting = undefined;
      w(lines.shift()!);
    }
  });
  let closed = false;
  let failWaiting: ((err: Error) => void) | undefined;
  socket.on('close', () => {
    closed = true;
    failWaiting?.(new Error('the server closed the connection'));
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      if (lines.length > 0) return resolve(lines.shift()!);
      if (closed) return reject(new Error('the server closed the connection'));
      waiting = resolve;
      failWaiting = reject;
    });
  await new Promise((r, j) => (socket.once('connect', r), socket.once('error', j)));
  await nextLine(); // greeting
  const exchange = async (line: string) => {
    socket.write(`${line}\n`);
    return nextLine();
  };
  await exchange('{"execute":"qmp_capabilities"}');
  return { exchange, close: () => socket.destroy() };
}

describe('proxy replies are QEMU\'s bytes', () => {
  it('returns and errors, ids of every kind: byte-identical to QEMU\'s own reply lines', async () => {
    const direct = await lineClient(qemu.qmpPath);
    const proxied = await lineClient(proxy.path);
    try {
      const requests = [
        '{"execute":"query-version","id":7}',
        '{"execute":"query-status","id":"a string"}',
        '{"execute":"query-status","id":{"nested":[1,"two",null]}}',
        '{"execute":"query-kvm","id":-1.5e3}',
        '{"execute":"query-name"}',
        '{"execute":"query-commands","id":12345678901234567890}',
        '{"execute":"no-such-command","id":["x"]}',
        '{"execute":"query-status","id":"\\u00e9\\n"}',
      ];
      for (const request of requests) {
        const want = await direct.exchange(request);
        const got = await proxied.exchange(request);
        expect(got, request).toBe(want);
      }
    } finally {
      direct.close();
      proxied.close();
    }
  });
});

describe('the relay path\'s guarantees through the proxy', () => {
  it('a reply that never comes errors the command at the proxy\'s deadline; the late reply then goes nowhere', async () => {
    const q = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'backend.sock')},server=on,wait=off`] });
    const b = await QmpClient.connect({ path: join(q.dir, 'backend.sock') }, { timeoutMs: 0 });
    const p = await QmpProxy.start(b, { listen: join(dir, 'run', 'deadline.sock'), commandTimeoutMs: 300 });
    const client = await lineClient(p.path);
    try {
      process.kill(q.pid, 'SIGSTOP');
      let late: string;
      try {
        late = await client.exchange('{"execute":"query-status","id":"late"}');
      } finally {
        process.kill(q.pid, 'SIGCONT');
      }
      expect(JSON.parse(late)).toEqual({ id: 'late', error: { class: 'GenericError', desc: expect.stringMatching(/^libqemu proxy: .*query-status.*300 ms/) } });
      // QEMU answers the timed-out command now; the client sees only its next command's reply
      expect(JSON.parse(await client.exchange('{"execute":"query-status","id":"next"}'))).toMatchObject({ id: 'next', return: { running: true } });
      expect(b.pendingCount).toBe(0);
    } finally {
      client.close();
      await p.close();
      await b.close();
      await q.stop();
    }
  });

  it('when QEMU goes away, every pending command of every client settles and the clients are let go', async () => {
    const q = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'backend.sock')},server=on,wait=off`] });
    const b = await QmpClient.connect({ path: join(q.dir, 'backend.sock') }, { timeoutMs: 0 });
    const p = await QmpProxy.start(b, { listen: join(dir, 'run', 'drop.sock') });
    const clients = [await lineClient(p.path), await lineClient(p.path)];
    try {
      process.kill(q.pid, 'SIGSTOP');
      const pending = clients.map((c, i) => c.exchange(`{"execute":"query-status","id":${i}}`).catch((err: unknown) => err));
      await waitFor('both commands at the backend', () => b.pendingCount === 2);
      await q.kill('SIGKILL');
      expect(await p.done).toBe('the backend QMP connection closed');
      expect(b.pendingCount).toBe(0);
      // nobody hangs: each client is let go (as QEMU's own socket would), or told first
      const outcomes = await Promise.all(pending);
      for (const [i, o] of outcomes.entries()) {
        if (!(o instanceof Error)) expect(JSON.parse(o as string)).toMatchObject({ id: i, error: { class: 'GenericError' } });
      }
    } finally {
      for (const c of clients) c.close();
      await p.close();
      await b.close();
      await q.stop();
    }
  });
});
