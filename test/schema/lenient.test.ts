/**
 * Replies and events from a QEMU newer than our schema (unknown enum values, extra keys) never fail a
 * call: a fake server plays that QEMU, with the real QEMU 7.2 schema so validation still runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeQmpServer } from '../../src/testing/index.js';
import { QemuClient, SchemaError, checkEvent, fetchSchemaFromBinary, type Drift, type SchemaModel } from '../../src/schema/index.js';

let model: SchemaModel;
let server: FakeQmpServer;
const futureStatus = { running: true, singlestep: false, status: 'warp-speed', 'dirty-rate': { mbps: 3 } };

beforeAll(async () => {
  model = await fetchSchemaFromBinary('qemu-system-x86_64');
  server = await FakeQmpServer.start({
    version: { major: 7, minor: 2, micro: 22 },
    commands: {
      'query-qmp-schema': () => ({ return: model.raw }),
      'query-version': () => ({ return: model.version }),
      'query-status': () => ({ return: futureStatus }),
      'set_link': () => ({ return: {} }),
    },
  });
});
afterAll(async () => {
  await server?.close();
});

describe('lenient decoding', () => {
  it('an unknown enum value and extra keys in a reply are passed through, and reported as drift', async () => {
    const drift: [string, readonly Drift[]][] = [];
    const client = await QemuClient.connect(server.target, { schemaCache: false, onReplyDrift: (c, d) => drift.push([c, d]) });
    try {
      const status = await client.execute('query-status');
      expect(status).toEqual(futureStatus);
      expect(drift).toEqual([
        [
          'query-status',
          [
            { path: 'query-status.return.status', problem: expect.stringMatching(/^"warp-speed" is not one of /) as unknown },
            { path: 'query-status.return.dirty-rate', problem: 'unknown member' },
          ],
        ],
      ]);
      // Arguments are still validated strictly.
      await expect(client.execute('set_link', { name: 'n', up: 'x' as unknown as boolean })).rejects.toThrow('set_link.up: expected boolean, got string');
      await expect(client.execute('set_link', { name: 'n', up: true })).resolves.toEqual({});
    } finally {
      await client.close();
    }
  });

  it('without a drift hook the same reply simply resolves', async () => {
    const client = await QemuClient.connect(server.target, { schemaCache: false });
    try {
      await expect(client.commands.queryStatus()).resolves.toEqual(futureStatus);
    } finally {
      await client.close();
    }
  });

  it('events with unknown values and keys are delivered unchanged', async () => {
    const client = await QemuClient.connect(server.target, { schemaCache: false });
    try {
      const conn = server.connections.at(-1)!;
      const waiting = client.waitForEvent('SHUTDOWN', { timeoutMs: 5000 });
      const data = { guest: true, reason: 'cosmic-ray', 'new-detail': 1 };
      conn.sendEvent('SHUTDOWN', data);
      const ev = await waiting;
      expect(ev.data).toEqual(data);
      expect(checkEvent(model, 'SHUTDOWN', ev.data).map((d) => d.path)).toEqual(['SHUTDOWN.reason', 'SHUTDOWN.new-detail']);
      expect(checkEvent(model, 'SHUTDOWN', { guest: false, reason: 'host-qmp-quit' })).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('a peer without query-qmp-schema: commands go out unchecked, supports() says why it cannot answer', async () => {
    const bare = await FakeQmpServer.start({ commands: { 'query-status': () => ({ return: futureStatus }) } });
    const client = await QemuClient.connect(bare.target, { schemaCache: false });
    try {
      await expect(client.execute('query-status')).resolves.toEqual(futureStatus);
      const err = await client.supports('query-status').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaError);
      expect((err as SchemaError).message).toContain('does not offer query-qmp-schema');
      // asked once, not before every command
      await client.execute('query-status');
      expect(bare.connections[0]!.received.filter((m) => m.execute === 'query-qmp-schema')).toHaveLength(1);
    } finally {
      await client.close();
      await bare.close();
    }
  });
});
