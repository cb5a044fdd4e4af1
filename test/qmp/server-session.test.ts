/** The shared server-side QMP session through the fake server: a misbehaving script or client costs only its own session. */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeQmpServer } from '../../src/testing/index.js';
import { WireClient, type Reply } from '../proxy/wire-client.js';

const servers: FakeQmpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function negotiated(path: string): Promise<WireClient> {
  const { client } = await WireClient.connect(path);
  await client.write(['{"execute":"qmp_capabilities","id":"neg"}']);
  await client.repliesUntil('neg');
  return client;
}

describe('QmpServerSession', () => {
  it('turns a handler that throws into an error reply with the id; the session and others carry on', async () => {
    const server = await FakeQmpServer.start({
      commands: {
        boom: () => {
          throw new Error('script bug');
        },
        later: async () => {
          throw new Error('async script bug');
        },
      },
    });
    servers.push(server);
    const a = await negotiated(server.path);
    const b = await negotiated(server.path);
    await a.write(['{"execute":"boom","id":"1"}{"execute":"later","id":"2"}{"execute":"query-status","id":"3"}']);
    // the fake answers as its handlers finish (scripts may reorder replies): collect all three, then sort by id
    const got: Reply[] = [];
    while (got.length < 3) got.push(...(await a.repliesUntil(['1', '2', '3'].find((id) => !got.some((r) => r.id === `"${id}"`))!)));
    got.sort((x, y) => String(x.id).localeCompare(String(y.id)));
    expect(got).toEqual([
      { kind: 'error', id: '"1"', class: 'GenericError', desc: 'internal error: script bug' },
      { kind: 'error', id: '"2"', class: 'GenericError', desc: 'internal error: async script bug' },
      { kind: 'return', id: '"3"', return: { status: 'running', singlestep: false, running: true } },
    ]);
    await b.write(['{"execute":"query-status","id":"b"}']);
    expect(await b.repliesUntil('b')).toMatchObject([{ kind: 'return', id: '"b"' }]);
    a.close();
    b.close();
  });

  it('drops a client that never reads its replies, and only that one', async () => {
    const server = await FakeQmpServer.start({ commands: { big: () => ({ return: 'z'.repeat(1024 * 1024) }) } });
    servers.push(server);
    const reader = await negotiated(server.path);
    const stalled = connect(server.path);
    stalled.pause(); // never reads: the server's writes pile up
    stalled.write('{"execute":"qmp_capabilities"}');
    for (let i = 0; i < 40; i++) stalled.write('{"execute":"big"}');
    const conn = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 30_000;
      const poll = () => {
        const dropped = server.connections.some((c) => c.closed);
        if (dropped || Date.now() > deadline) resolve(dropped);
        else setTimeout(poll, 50);
      };
      poll();
    });
    expect(conn).toBe(true);
    await reader.write(['{"execute":"query-status","id":"r"}']);
    expect(await reader.repliesUntil('r')).toMatchObject([{ kind: 'return', id: '"r"' }]);
    reader.close();
    stalled.destroy();
  });
});

describe('FakeQmpServer with fdPassing', () => {
  it('hands the fds sent with a command to its handler', async () => {
    const { openSync, closeSync, fstatSync } = await import('node:fs');
    const { QmpClient } = await import('../../src/qmp/index.js');
    const { unixFdPassing } = await import('../../native/socket.js');
    const seen: { fds: number; size: number }[] = [];
    const server = await FakeQmpServer.start({
      fdPassing: true,
      commands: { getfd: (_args, call) => (seen.push({ fds: call.fds.length, size: fstatSync(call.fds[0]!).size }), { return: {} }) },
    });
    servers.push(server);
    const client = await QmpClient.connect(server.target, { fdPassing: unixFdPassing });
    const fd = openSync(new URL(import.meta.url), 'r');
    try {
      expect(await client.execute('getfd', { fdname: 'f' }, { fds: [fd] })).toEqual({});
      expect(seen).toEqual([{ fds: 1, size: fstatSync(fd).size }]);
    } finally {
      closeSync(fd);
      await client.close();
    }
  });
});
