/** Outbound size caps on a real QEMU: a command over the cap is refused typed before a byte is sent. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { QmpProxy } from '../../src/proxy/index.js';
import { MessageTooLargeError, QmpClient, StreamTransport } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { WireClient } from '../proxy/wire-client.js';

let qemu: QemuInstance;
let client: QmpClient;
let dir: string;

beforeAll(async () => {
  qemu = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'side.sock')},server=on,wait=off`] });
  client = await QmpClient.connect({ path: qemu.qmpPath });
  dir = mkdtempSync(join(tmpdir(), 'lq-cap-'));
});
afterAll(async () => {
  await client?.close();
  await qemu?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('outbound message caps', () => {
  it('refuses a 12 MiB command typed, before sending, while another caller on the same connection is answered', async () => {
    const big = client.execute('qom-list-types', { implements: 'x'.repeat(12 * 1024 * 1024) });
    const other = client.execute('query-status');
    const err = await big.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect(err).toMatchObject({ direction: 'outbound', limitBytes: 10 * 1024 * 1024 });
    expect((err as MessageTooLargeError).receivedBytes).toBeGreaterThan(12 * 1024 * 1024);
    expect((err as MessageTooLargeError).hint).toMatch(/maxOutboundBytes/);
    expect(await other).toMatchObject({ status: 'running' });
    // nothing of it reached QEMU: the connection is in sync
    expect(await client.execute('query-version')).toMatchObject({ qemu: { major: 7 } });
  });

  it('takes its limit from maxOutboundBytes and validates it', async () => {
    const small = await QmpClient.connect({ path: join(qemu.dir, 'side.sock') }, { maxOutboundBytes: 1000 });
    try {
      await expect(small.execute('qom-list-types', { implements: 'y'.repeat(2000) })).rejects.toMatchObject({ direction: 'outbound', limitBytes: 1000 });
      expect(await small.execute('qom-list-types', { implements: 'no-such-type' })).toEqual([]);
    } finally {
      await small.close();
    }
    expect(() => new StreamTransport({ path: '/x' }, { maxOutboundBytes: 0 })).toThrow(InvalidArgumentError);
  });

  // QEMU reads its monitor one byte per main-loop turn: the 256 KiB command below takes it seconds, more under load.
  it('through the proxy: a command over the backend cap gets an error reply with its id; the client and others carry on', { timeout: 600_000 }, async () => {
    const proxy = await QmpProxy.start(client, { listen: join(dir, 'p', 'p.sock') });
    try {
      const { client: a } = await WireClient.connect(proxy.path);
      const { client: b } = await WireClient.connect(proxy.path);
      for (const c of [a, b]) {
        await c.write(['{"execute":"qmp_capabilities","id":"neg"}']);
        await c.repliesUntil('neg');
      }
      await a.write([`{"execute":"qom-list-types","arguments":{"implements":"${'x'.repeat(12 * 1024 * 1024)}"},"id":"big"}`]);
      await b.write(['{"execute":"query-status","id":"b1"}']);
      expect(await b.repliesUntil('b1')).toMatchObject([{ kind: 'return', id: '"b1"' }]);
      const [reply] = await a.repliesUntil('big');
      expect(reply).toMatchObject({ kind: 'error', id: '"big"', class: 'GenericError', desc: expect.stringMatching(/outbound limit/) });
      // a 256 KiB argument goes through (QEMU reads it slowly; the proxy adds no wait of its own)
      await a.write([`{"execute":"qom-list-types","arguments":{"implements":"${'z'.repeat(256 * 1024)}"},"id":"fits"}`]);
      expect(await a.repliesUntil('fits', 540_000)).toEqual([{ kind: 'return', id: '"fits"', return: [] }]);
      a.close();
      b.close();
    } finally {
      await proxy.close();
    }
  });
});
