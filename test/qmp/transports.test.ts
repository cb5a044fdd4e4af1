/** Every transport kind behind the same client, and the transport capability flags the client honours. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  QmpClient,
  QmpClosedError,
  type QmpMessage,
  type QmpTransport,
  type TransportCapabilities,
  type TransportHandlers,
} from '../../src/qmp/index.js';
import { startQemu, type QemuInstance, type StartQemuOptions } from '../harness/qemu.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real QEMU of this test's own (QEMU serves one client per monitor socket), stopped after the test. */
async function qemu(options: StartQemuOptions = {}): Promise<QemuInstance> {
  const q = await startQemu(options);
  cleanups.push(() => q.stop());
  return q;
}

/** A TCP port that was free a moment ago (the kernel picks it; we close it again for QEMU to bind). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * Whether 127.0.0.1:`port` is in the LISTEN state (Linux /proc/net/tcp, state 0A). Read from the
 * kernel rather than probed with a connect: a probe would take QEMU's single monitor connection.
 */
function isTcpListening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((line) => {
      const cols = line.trim().split(/\s+/);
      return cols[1] === local && cols[3] === '0A';
    });
}

/**
 * A real QEMU whose second monitor is QEMU's own TCP listener on 127.0.0.1. The port was free when
 * picked but another process may take it before QEMU binds; QEMU then exits, and we retry on a new port
 * (a QEMU that stays up without listening is a failure, not retried).
 */
async function qemuWithTcpMonitor(): Promise<{ qemu: QemuInstance; port: number }> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const q = await qemu({ args: ['-qmp', `tcp:127.0.0.1:${port},server=on,wait=off`] });
    let exited = false;
    void q.exited.then(() => (exited = true));
    const deadline = Date.now() + 10_000;
    while (!exited && !isTcpListening(port) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (isTcpListening(port) && !exited) return { qemu: q, port };
    const exitedByItself = exited; // read before stop(), which makes QEMU exit
    await q.stop();
    if (!exitedByItself) throw new Error(`QEMU's TCP monitor 127.0.0.1:${port} not listening after 10 s: ${q.stderr()}`);
    lastError = `QEMU exited: ${q.stderr()}`;
  }
  throw new Error(`no QEMU TCP monitor: ${lastError}`);
}

/** QEMU's answer to query-status, as every transport must deliver it. */
function expectStatus(status: unknown): void {
  expect(status).toMatchObject({ status: expect.any(String), running: expect.any(Boolean) });
}

describe('stream transports (real QEMU)', () => {
  it('{ host, port }: TCP', async () => {
    const { port } = await qemuWithTcpMonitor();
    const client = await QmpClient.connect({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    expect(client.transport.description).toBe(`tcp:127.0.0.1:${port}`);
    expect(client.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
    expectStatus(await client.execute('query-status'));
  });

  it('{ stream }: any Duplex, e.g. an already connected socket', async () => {
    const q = await qemu();
    const sock = connect(q.qmpPath);
    cleanups.push(() => void sock.destroy());
    await new Promise((r) => sock.once('connect', r));
    const client = await QmpClient.connect({ stream: sock });
    cleanups.push(() => client.close());
    expect(client.transport.description).toBe('stream');
    expect(client.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
    expectStatus(await client.execute('query-status'));
  });

  it('{ stream }: an in-memory Duplex that is not a socket', async () => {
    const toClient = new PassThrough();
    const fromClient = new PassThrough();
    const duplex = Duplex.from({ readable: toClient, writable: fromClient });
    fromClient.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const msg = JSON.parse(line) as QmpMessage;
        toClient.write(`${JSON.stringify({ return: msg.execute === 'echo' ? msg.arguments : {}, id: msg.id })}\r\n`);
      }
    });
    toClient.write('{"QMP":{"version":{"qemu":{"major":9,"minor":0,"micro":0},"package":""},"capabilities":[]}}\r\n');
    const client = await QmpClient.connect({ stream: duplex });
    cleanups.push(() => client.close());
    expect(client.greeting.version.qemu.major).toBe(9);
    expect(await client.execute('echo', { via: 'memory' })).toEqual({ via: 'memory' });
  });

  it('{ fd }: a descriptor inherited by a child process', async () => {
    // The child talks over the main monitor; this test reads the same QEMU over a second monitor.
    const q = await qemu({ argsFor: (dir) => ['-qmp', `unix:${join(dir, 'direct.sock')},server=on,wait=off`] });
    const direct = await QmpClient.connect({ path: join(q.dir, 'direct.sock') });
    cleanups.push(() => direct.close());
    const directStatus = await direct.execute('query-status');

    const sock = connect(q.qmpPath);
    cleanups.push(() => void sock.destroy());
    // spawn() runs in the same tick as 'connect' and stops the parent's reads of a socket it hands
    // over, so the greeting stays for the child.
    await new Promise((r) => sock.once('connect', r));
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./fixtures/fd-child.ts', import.meta.url).pathname], {
      stdio: ['ignore', 'pipe', 'pipe', sock],
    });
    cleanups.push(() => void child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const exit = new Promise<number | null>((r) => child.once('exit', r));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 20_000)));
    const code = await Promise.race([exit, deadline]).finally(() => clearTimeout(timer));
    if (code === 'timeout') {
      child.kill('SIGKILL');
      await exit;
      expect.fail(`fd child did not exit within 20 s; stderr:\n${err}`);
    }
    expect(err).toBe('');
    expect(code).toBe(0);
    const printed = JSON.parse(out) as { version: unknown; status: unknown };
    expect(printed.version).toEqual(direct.greeting.version);
    expect(direct.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
    expectStatus(printed.status);
    expect(printed.status).toEqual(directStatus);
  });
});

/**
 * Shaped like libvirt's passthrough: it rewrites ids to libvirt-N and maps replies back,
 * is pre-negotiated (synthesises the greeting; qmp_capabilities must never reach it), and cannot
 * pipeline (libvirt's job lock runs one command at a time).
 */
class PassthroughLikeTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities = {
    pipelining: false,
    oob: false,
    fdPassing: false,
    maxMessageBytes: 10 * 1024 * 1024,
    preNegotiated: true,
  };
  readonly description = 'passthrough:test';
  readonly wire: QmpMessage[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private handlers: TransportHandlers | undefined;
  private next = 1;

  async open(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    queueMicrotask(() => handlers.message({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'libvirt' }, capabilities: [] } }));
  }

  send(msg: QmpMessage): void {
    if (!this.handlers) throw new QmpClosedError('not open');
    const clientId = msg.id;
    const wireId = `libvirt-${this.next++}`;
    this.wire.push({ ...msg, id: wireId });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    setTimeout(() => {
      this.inFlight--;
      // What the "monitor" answers, under the wire id; the transport maps it back to the client's id.
      const reply: QmpMessage = { return: { echoed: msg.arguments ?? null, wireId }, id: wireId };
      this.handlers?.message({ ...reply, id: clientId });
    }, 2);
  }

  async close(reason?: Error): Promise<void> {
    const h = this.handlers;
    this.handlers = undefined;
    h?.closed(reason);
  }
}

describe('transport capability flags', () => {
  it('preNegotiated: uses the synthesised greeting and never sends qmp_capabilities; replies map back to client ids; no pipelining: one at a time', async () => {
    const transport = new PassthroughLikeTransport();
    const client = await QmpClient.connect({ transport });
    cleanups.push(() => client.close());
    expect(client.runstate).toBe('running');
    expect(client.greeting.version.package).toBe('libvirt');
    expect(transport.wire).toEqual([]);
    const results = (await Promise.all([1, 2, 3, 4, 5].map((n) => client.execute('echo', { n })))) as { echoed: { n: number }; wireId: string }[];
    expect(results.map((r) => r.echoed.n)).toEqual([1, 2, 3, 4, 5]);
    expect(results.map((r) => r.wireId)).toEqual(['libvirt-1', 'libvirt-2', 'libvirt-3', 'libvirt-4', 'libvirt-5']);
    expect(transport.wire.some((m) => m.execute === 'qmp_capabilities')).toBe(false);
    expect(transport.maxInFlight).toBe(1);
    // The client still assigned its own ids; the transport only mapped them.
    expect(client.pendingCount).toBe(0);
  });

  it('failed(id, error): the caller of that command gets the very error object, and the others their replies', async () => {
    const transport = new PassthroughLikeTransport();
    const client = await QmpClient.connect({ transport }, { timeoutMs: 0 });
    cleanups.push(() => client.close());
    class RouteError extends Error {
      readonly code = 42;
    }
    const routeError = new RouteError('the route refused this one');
    const send = transport.send.bind(transport);
    transport.send = (msg) => {
      if ((msg.arguments as { fail?: boolean } | undefined)?.fail) queueMicrotask(() => transport['handlers']?.failed(String(msg.id), routeError));
      else send(msg);
    };
    const failing = client.execute('echo', { fail: true }).catch((e: unknown) => e);
    const fine = client.execute('echo', { n: 1 });
    expect(await failing).toBe(routeError);
    expect(((await fine) as { echoed: { n: number } }).echoed.n).toBe(1);
    expect(client.pendingCount).toBe(0);
    // A failure for an id nobody waits for is ignored.
    transport['handlers']?.failed('no-such-id', new Error('late'));
    expect(((await client.execute('echo', { n: 2 })) as { echoed: { n: number } }).echoed.n).toBe(2);
  });

  it('a transport that closes rejects pending calls with its reason', async () => {
    const transport = new PassthroughLikeTransport();
    const client = await QmpClient.connect({ transport }, { timeoutMs: 0 });
    transport.send = () => {}; // swallow: the command stays pending
    const call = client.execute('echo').catch((e: unknown) => e);
    await transport.close(new Error('libvirtd went away'));
    const err = await call;
    expect(err).toBeInstanceOf(QmpClosedError);
    expect((err as QmpClosedError).message).toContain('libvirtd went away');
  });
});
