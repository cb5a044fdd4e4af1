/**
 * QmpServerSession's `dispatch` hook (the proxy's way: the hook answers through a call object, no promise
 * per command): replies still leave in request order, an answer counts once, a throwing hook becomes
 * QEMU-style error reply, and a call answered after its client left goes nowhere.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpServerSession, type QmpServerCall, type QmpServerRequest } from '../../src/qmp/server-session.js';
import { waitFor } from '../harness/wait.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A session on one end of a unix socket with `dispatch`, and a raw client on the other end. */
async function pair(dispatch: (request: QmpServerRequest, call: QmpServerCall) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'lq-dispatch-'));
  const path = join(dir, 's.sock');
  let session!: QmpServerSession;
  const server: Server = createServer((socket) => {
    session = new QmpServerSession(socket, { greeting: { QMP: { version: {}, capabilities: [] } }, oobOffered: false }, { dispatch });
  });
  await new Promise<void>((r) => server.listen(path, r));
  const client: Socket = connect(path);
  let text = '';
  client.setEncoding('utf8').on('data', (d: string) => (text += d));
  cleanups.push(() => {
    client.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('greeting', () => text.includes('\n'));
  client.write('{"execute":"qmp_capabilities"}');
  await waitFor('negotiated', () => text.includes('{"return": {}}'));
  text = '';
  return { client, lines: () => text.split('\r\n').filter(Boolean), session: () => session };
}

describe('QmpServerSession dispatch hook', () => {
  it('answers in request order whatever order the calls are answered in; later answers are ignored', async () => {
    const calls: QmpServerCall[] = [];
    const { client, lines, session } = await pair((_request, call) => calls.push(call));
    client.write('{"execute":"a","id":1}{"execute":"b","id":"two"}{"execute":"c"}');
    await waitFor('three calls', () => calls.length === 3);
    expect(session().pendingCount).toBe(3);
    calls[2]!.reply({ return: { third: true } });
    calls[1]!.replyReturnText('{"as": "QEMU wrote it", "big": 18446744073709551615}');
    expect(lines()).toEqual([]); // the first is not answered yet: nothing may overtake it
    calls[0]!.reply({ error: { class: 'GenericError', desc: 'first' } });
    calls[0]!.reply({ return: 'a second answer' });
    calls[1]!.reply({ return: 'and another' });
    await waitFor('three replies', () => lines().length === 3);
    expect(lines()).toEqual([
      '{"id": 1, "error": {"class": "GenericError", "desc": "first"}}',
      '{"return": {"as": "QEMU wrote it", "big": 18446744073709551615}, "id": "two"}',
      '{"return": {"third":true}}', // a reply object is serialised by JSON.stringify
    ]);
    expect(session().pendingCount).toBe(0);
  });

  it('a hook that throws becomes an internal-error reply with the id; the session carries on', async () => {
    const { client, lines } = await pair((request, call) => {
      if (request.command === 'boom') throw new Error('relay bug');
      call.reply({ return: {} });
    });
    client.write('{"execute":"boom","id":"x"}\n{"execute":"fine","id":"y"}\n');
    await waitFor('two replies', () => lines().length === 2);
    expect(lines()).toEqual(['{"id": "x", "error": {"class": "GenericError", "desc": "internal error: relay bug"}}', '{"return": {}, "id": "y"}']);
  });

  it('the call\'s signal aborts when the client leaves; an answer after that goes nowhere', async () => {
    const calls: QmpServerCall[] = [];
    const { client, session } = await pair((_request, call) => calls.push(call));
    client.write('{"execute":"slow","id":1}');
    await waitFor('the call', () => calls.length === 1);
    expect(calls[0]!.signal.aborted).toBe(false);
    client.destroy();
    await waitFor('the session to close', () => session().isClosed);
    expect(calls[0]!.signal.aborted).toBe(true);
    calls[0]!.reply({ return: {} }); // must not throw or write
    expect(session().pendingCount).toBe(0);
  });
});
