/** supports()/supportsEvent(), lazy schema loading and the per-build schema cache, against real QEMU. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { QemuClient, SchemaCache } from '../../src/schema/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

let qemu: QemuInstance;
beforeAll(async () => {
  qemu = await startQemu();
});
afterAll(async () => {
  await qemu?.stop();
});

async function connect(cache: SchemaCache, sent: string[]): Promise<QemuClient> {
  return QemuClient.connect(
    { path: qemu.qmpPath },
    { schemaCache: cache, onTraffic: (dir, msg) => dir === 'out' && sent.push(String(msg.execute)) },
  );
}

describe('supports()', () => {
  it('answers for commands, members (union branches included) and events', async () => {
    const sent: string[] = [];
    const client = await connect(new SchemaCache(), sent);
    try {
      expect(await client.supports('set_link')).toBe(true);
      expect(await client.supports('set_link', 'up')).toBe(true);
      expect(await client.supports('set_link', 'down')).toBe(false);
      expect(await client.supports('query-status')).toBe(true);
      expect(await client.supports('migrate-incoming-v2')).toBe(false);
      expect(await client.supports('blockdev-add', 'filename')).toBe(true); // member of the `file` branch
      expect(await client.supports('blockdev-add', 'no-such-option')).toBe(false);
      expect(await client.supportsEvent('SHUTDOWN')).toBe(true);
      expect(await client.supportsEvent('SHUTDOWN', 'reason')).toBe(true);
      expect(await client.supportsEvent('SHUTDOWN', 'why')).toBe(false);
      expect(await client.supportsEvent('GUEST_EXPLODED')).toBe(false);
      // one schema fetch for all of the above
      expect(sent.filter((c) => c === 'query-qmp-schema')).toHaveLength(1);
      await expect(client.supports('')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(client.supports('set_link', 7 as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await client.close();
    }
  });

  it('fetches the schema only when first needed, then shares it with later connections to the same QEMU', async () => {
    const cache = new SchemaCache();
    const sent1: string[] = [];
    const first = await connect(cache, sent1);
    expect(first.loadedSchema).toBeUndefined();
    expect(sent1).not.toContain('query-qmp-schema');
    const model = await first.schema();
    expect(sent1.filter((c) => c === 'query-qmp-schema')).toHaveLength(1);
    expect(model.versionString).toMatch(/^7\.2\./);
    expect(model.commands.size).toBeGreaterThan(200);
    await first.close();

    const sent2: string[] = [];
    const second = await connect(cache, sent2);
    try {
      expect(await second.schema()).toBe(model); // same object: no second fetch
      await second.execute('query-status'); // validated against the cached schema
      expect(sent2).not.toContain('query-qmp-schema');
      expect(cache.size).toBe(1);
    } finally {
      await second.close();
    }
  });

  it('the cache is bounded and forgets failed loads', async () => {
    const cache = new SchemaCache(2);
    const fail = cache.get('a', () => Promise.reject(new Error('boom')));
    await expect(fail).rejects.toThrow('boom');
    expect(cache.size).toBe(0);
    const model = await (await import('../../src/schema/index.js')).SchemaModel.fromIntrospection([]);
    for (const k of ['x', 'y', 'z']) await cache.get(k, () => Promise.resolve(model));
    expect(cache.size).toBe(2);
  });

  it("a caller sharing another connection's load loads through its own when that one fails (a hung QEMU)", async () => {
    const cache = new SchemaCache();
    const model = await (await import('../../src/schema/index.js')).SchemaModel.fromIntrospection([]);
    let failFirst!: (err: Error) => void;
    const first = cache.get('k', () => new Promise((_, reject) => (failFirst = reject)));
    let ownLoads = 0;
    const second = cache.get('k', () => (ownLoads++, Promise.resolve(model)));
    failFirst(new Error('the first QEMU timed out'));
    await expect(first).rejects.toThrow('timed out');
    expect(await second).toBe(model);
    expect(ownLoads).toBe(1);
    expect(cache.size).toBe(1);
  });
});
