/** Every transport kind behind the same client, and the transport capability flags the client honours. */
import { spawn } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
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
import { FakeQmpServer } from '../../src/testing/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(): Promise<FakeQmpServer> {
  const s = await FakeQmpServer.start({ commands: { echo: (a) => ({ return: a ?? {} }) } });
  cleanups.push(() => s.close());
  return s;
}

describe('stream transports', () => {
  it('{ host, port }: TCP', async () => {
    const server = await fake();
    // A TCP front for the fake server's unix socket.
    const tcp: Server = createServer((sock) => {
      const up = connect(server.path);
      sock.pipe(up).pipe(sock);
      sock.on('error', () => up.destroy());
      up.on('error', () => sock.destroy());
      sock.on('close', () => up.destroy());
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => tcp.close(() => r())));
    const port = (tcp.address() as { port: number }).port;
    const client = await QmpClient.connect({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    expect(client.transport.description).toBe(`tcp:127.0.0.1:${port}`);
    expect(await client.execute('echo', { via: 'tcp' })).toEqual({ via: 'tcp' });
  });

  it('{ stream }: any Duplex, e.g. an already connected socket', async () => {
    const server = await fake();
    const sock = connect(server.path);
    await new Promise((r) => sock.once('connect', r));
    const client = await QmpClient.connect({ stream: sock });
    cleanups.push(() => client.close());
    expect(await client.execute('echo', { via: 'stream' })).toEqual({ via: 'stream' });
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
    const server = await fake();
    const sock = connect(server.path);
    await new Promise((r) => sock.once('connect', r));
    cleanups.push(() => void sock.destroy());
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./fixtures/fd-child.ts', import.meta.url).pathname], {
      stdio: ['ignore', 'pipe', 'pipe', sock],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'fake' }, status: { status: 'running', singlestep: false, running: true } });
  });
});

/**
 * Shaped like libvirt's passthrough: it owns ids (rewrites them to libvirt-N and maps replies back),
 * is pre-negotiated (synthesises the greeting; qmp_capabilities must never reach it), and cannot
 * pipeline (libvirt's job lock runs one command at a time).
 */
class PassthroughLikeTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities = {
    pipelining: false,
    oob: false,
    fdPassing: false,
    maxMessageBytes: 10 * 1024 * 1024,
    ownsIds: true,
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
  it('preNegotiated: uses the synthesised greeting and never sends qmp_capabilities; ownsIds: replies map back to client ids; no pipelining: one at a time', async () => {
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
