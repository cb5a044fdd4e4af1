/**
 * The same bytes sent to QEMU 7.2 itself and to every libqemu QMP endpoint — the proxy on a second
 * monitor (reading with Node, and with recvmsg for fd passing), the proxy on libvirt's passthrough
 * (private libvirtd, TCG guest), the fake server — must
 * get the same replies, error class by error class and id by id (ids compared as the text written).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../src/hybrid/index.js';
import { PassthroughProxy, QmpProxy, unixFdPassing } from '../../src/proxy/index.js';
import { QmpClient } from '../../src/qmp/index.js';
import { FakeQmpServer, startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { WireClient, type Reply } from './wire-client.js';

interface Endpoint {
  name: string;
  path: string;
  /** Offers `oob` in its greeting (libvirt's passthrough cannot). */
  oob: boolean;
}

let qemu: QemuInstance;
let lv: PrivateLibvirtd | undefined;
let hv: Hypervisor | undefined;
let fake: FakeQmpServer;
const proxies: (QmpProxy | PassthroughProxy)[] = [];
const backends: { close(): Promise<unknown> }[] = [];
const endpoints: Endpoint[] = [];
let reference: Endpoint;

beforeAll(async () => {
  qemu = await startQemu({ argsFor: (dir) => ['-qmp', `unix:${join(dir, 'side.sock')},server=on,wait=off`, '-qmp', `unix:${join(dir, 'fds.sock')},server=on,wait=off`] });
  reference = { name: 'QEMU 7.2', path: qemu.qmpPath, oob: true };
  const side = await QmpClient.connect({ path: join(qemu.dir, 'side.sock') }, { oob: true, timeoutMs: 0 });
  backends.push(side);
  proxies.push(await QmpProxy.start(side, { listen: join(qemu.dir, 'px', 'monitor.sock') }));
  endpoints.push({ name: 'monitor proxy', path: proxies[0]!.path, oob: true });
  // The same proxy reading its clients with recvmsg (fd passing on): a different read path, the same answers.
  const fdSide = await QmpClient.connect({ path: join(qemu.dir, 'fds.sock') }, { oob: true, timeoutMs: 0, fdPassing: unixFdPassing });
  backends.push(fdSide);
  const fdProxy = await QmpProxy.start(fdSide, { listen: join(qemu.dir, 'px', 'fds.sock'), fdPassing: true });
  proxies.push(fdProxy);
  endpoints.push({ name: 'monitor proxy with fd passing', path: fdProxy.path, oob: true });

  fake = await FakeQmpServer.start({ capabilities: ['oob'] });
  endpoints.push({ name: 'fake server', path: fake.path, oob: true });

  lv = await startPrivateLibvirtd({ prefix: 'conf' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
  const guest = await hv.createGuest(tinyGuestXml({ name: `conf${process.pid % 1000}` }));
  const pt = await guest.qmp({ via: 'passthrough', validate: false, timeoutMs: 0 });
  backends.push(pt);
  const ptProxy = await QmpProxy.start(pt, { listen: join(qemu.dir, 'px', 'passthrough.sock') });
  proxies.push(ptProxy);
  endpoints.push({ name: 'passthrough proxy', path: ptProxy.path, oob: false });
  // The passthrough proxy that serves on its own thread (the CLI's): the same answers.
  const threadProxy = await PassthroughProxy.start(guest, { listen: join(qemu.dir, 'px', 'thread.sock') });
  proxies.push(threadProxy);
  endpoints.push({ name: 'passthrough proxy on its own thread', path: threadProxy.path, oob: false });
});

afterAll(async () => {
  for (const p of proxies) await p.close();
  for (const b of backends) await b.close();
  await fake?.close();
  await hv?.close();
  await lv?.stop();
  await qemu?.stop();
});

const END = 'end-of-case';
const endMarker = `{"execute":"query-status","id":"${END}"}`;

/** Connects, optionally negotiates, writes the pieces and then the end marker, returns the replies before the marker. */
async function exchange(path: string, pieces: (string | Buffer)[], negotiate = true, lineTimeoutMs = 120_000): Promise<Reply[]> {
  const { client } = await WireClient.connect(path);
  try {
    if (negotiate) {
      await client.write(['{"execute":"qmp_capabilities","id":"neg"}']);
      await client.repliesUntil('neg');
    }
    await client.write([...pieces, endMarker]);
    return (await client.repliesUntil(END, lineTimeoutMs)).slice(0, -1);
  } finally {
    client.close();
  }
}

interface Case {
  name: string;
  pieces: (string | Buffer)[];
  negotiate?: boolean;
  /** Needs an endpoint that offers oob. */
  oob?: boolean;
  /**
   * QEMU reads its monitor one byte per main-loop turn: a few MiB of input take it tens of seconds,
   * minutes on a loaded machine. Not a timing assertion, only room to finish.
   */
  slow?: boolean;
}

const ids = ['1', '-7', '18446744073709551615', '-9223372036854775809', '0.1', '1.0', '1e400', '-0', '"text"', "'single'", '"\\u00e9\\ud83d\\ude00\\u007f/"', 'null', 'true', 'false', '[]', '{}', '[1, "a", null]', '{"b": 1, "a": [2], "id": {"x": 3}}', `${'['.repeat(1000)}${']'.repeat(1000)}`];

const cases: Case[] = [
  { name: 'two commands on one line', pieces: ['{"execute":"query-status","id":1}{"execute":"query-status","id":2}\n'] },
  { name: 'one command over several lines and writes', pieces: ['{"execute":', '\n"query-status",\r\n', '"id"\n:\n3', '\n}'] },
  { name: 'a command without a trailing newline', pieces: ['{"execute":"query-status","id":4}'] },
  { name: 'pretty-printed input', pieces: ['{\n  "execute": "query-status",\n  "id": 5\n}\n'] },
  { name: 'garbage, then valid commands', pieces: ['garbage{"execute":"query-status","id":6}\n', 'GARBAGE\n{"execute":"query-status","id":7}', '\xff\xfe{"execute":"query-status","id":8}', '{"execute":"query-status","id":"x\ny"}{"execute":"query-status","id":9}'] },
  { name: 'JSON that is not a QMP command', pieces: ['5\n', '"str"\n', '[1,2]\n', '}\n', '[}]\n', '{}\n', '{"id":1,"id":2}\n'] },
  { name: 'malformed commands', pieces: ['{"execute":"query-status","arguments":[],"id":10}', '{"execute":5,"id":11}', '{"execute":"query-status","control":1,"id":12}', '{"arguments":{},"id":13}', '{"execute":"query-status","foo":1,"id":14,"arguments":[]}'] },
  { name: 'an unknown command', pieces: ['{"execute":"no-such-command","id":15}'] },
  { name: 'ids of every JSON type', pieces: ids.map((id) => `{"execute":"query-status","id":${id}}`) },
  { name: 'ids on malformed commands', pieces: ids.map((id) => `{"execute":"query-status","arguments":7,"id":${id}}`) },
  { name: 'nesting beyond the limit', pieces: [`{"execute":"query-status","id":${'['.repeat(1025)}${']'.repeat(1025)}}`] },
  { name: 'an id nested 20,000 deep', pieces: [`{"execute":"query-status","id":${'['.repeat(20000)}${']'.repeat(20000)}}`] },
  { name: 'more tokens than QEMU allows in one value (2 Mi)', slow: true, pieces: [`{"execute":"query-status","id":[${'1,'.repeat(1 << 20)}1]}`] },
  { name: 'commands before negotiation', negotiate: false, pieces: ['{"execute":"query-status","id":20}', '{"execute":"no-such-command","id":21}', '{"execute":"qmp_capabilities","arguments":{"x":1},"id":22}', '{"exec-oob":"query-status","id":23}', 'junk', '{"execute":"qmp_capabilities","id":24}', '{"execute":"qmp_capabilities","id":25}'] },
  { name: 'negotiation with oob', negotiate: false, oob: true, pieces: ['{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":30}', '{"exec-oob":"no-such-command","id":31}'] },
];

describe('QMP endpoints answer like QEMU 7.2', () => {
  it('greet like QEMU (oob offered where the backend can run it)', async () => {
    const { client, greeting } = await WireClient.connect(reference.path);
    client.close();
    expect(greeting).toMatchObject({ QMP: { version: { qemu: { major: 7, minor: 2 } }, capabilities: ['oob'] } });
    for (const e of endpoints) {
      const { client: c, greeting: g } = await WireClient.connect(e.path);
      c.close();
      expect(g, e.name).toMatchObject({ QMP: { version: { qemu: { major: 7, minor: 2 } }, capabilities: e.oob ? ['oob'] : [] } });
    }
  });

  for (const c of cases) {
    const lineTimeoutMs = c.slow ? 900_000 : 120_000;
    it(c.name, { timeout: c.slow ? 1_200_000 : 120_000 }, async () => {
      const expected = await exchange(reference.path, c.pieces, c.negotiate, lineTimeoutMs);
      expect(expected.length).toBeGreaterThan(0);
      for (const e of endpoints) {
        if (c.oob && !e.oob) continue;
        const got = await exchange(e.path, c.pieces, c.negotiate, lineTimeoutMs);
        // Large answers (thousands of replies) are compared as counts per reply first, for a readable failure.
        if (expected.length > 50) expect(tally(got), e.name).toEqual(tally(expected));
        expect(got, e.name).toEqual(expected);
      }
    });
  }

  // QEMU reads its monitor one byte per main-loop turn (tens of µs a byte on these machines), so 64 MiB
  // would take it well over ten minutes: the endpoints are held to the sequence QEMU's streamer gives
  // (size error without id, then each stray token of the rest on its own), the same sequence the
  // token-count row above checks against QEMU live.
  it('more than 64 MiB of tokens in one value: refused without id, the stream stays in sync', async () => {
    const input = `{"execute":"query-status","arguments":{"a":"${'x'.repeat(33 << 20)}","b":"${'y'.repeat(33 << 20)}"},"id":1}`;
    const expecting = { kind: 'error', id: undefined, class: 'GenericError', desc: 'JSON parse error, expecting value' };
    const notObject = { kind: 'error', id: undefined, class: 'GenericError', desc: 'QMP input must be a JSON object' };
    for (const e of endpoints) {
      expect(await exchange(e.path, [input]), e.name).toEqual([
        { kind: 'error', id: undefined, class: 'GenericError', desc: 'JSON token size limit exceeded' },
        expecting, // }
        expecting, // ,
        notObject, // "id"
        expecting, // :
        notObject, // 1
        expecting, // }
      ]);
    }
  });

  it('the 20,000-deep id leaves each proxy and its other clients working', async () => {
    for (const e of endpoints) {
      const { client: bystander } = await WireClient.connect(e.path);
      await bystander.write(['{"execute":"qmp_capabilities","id":"neg"}']);
      await bystander.repliesUntil('neg');
      await exchange(e.path, [`{"execute":"query-status","id":${'['.repeat(20000)}${']'.repeat(20000)}}`]);
      await bystander.write(['{"execute":"query-status","id":"still-here"}']);
      expect(await bystander.repliesUntil('still-here'), e.name).toEqual([{ kind: 'return', id: '"still-here"', return: { status: 'running', singlestep: false, running: true } }]);
      bystander.close();
    }
  });
});

function tally(replies: Reply[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const r of replies) {
    const k = r.kind === 'return' ? `return id=${r.id}` : `${r.class}: ${r.desc} id=${r.id}`;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}
