/** Validation of each kind of mistake, against the real QEMU's schema, through QemuClient. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpCommandError } from '../../src/qmp/errors.js';
import type { QmpMessage } from '../../src/qmp/transport.js';
import { QemuClient, SchemaCache, SchemaError, validateCommand, type SchemaWarning } from '../../src/schema/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

let qemu: QemuInstance;
let client: QemuClient;
const sent: string[] = [];
const warnings: SchemaWarning[] = [];

beforeAll(async () => {
  qemu = await startQemu();
  client = await QemuClient.connect(
    { path: qemu.qmpPath },
    {
      schemaCache: new SchemaCache(),
      onTraffic: (dir, msg: QmpMessage) => {
        if (dir === 'out') sent.push(String(msg.execute ?? msg['exec-oob']));
      },
      onSchemaWarning: (w) => warnings.push(w),
    },
  );
});
afterAll(async () => {
  await client?.close();
  await qemu?.stop();
});

/** Runs a call that must be refused before anything is sent, and returns the error. */
async function refused(run: () => Promise<unknown>): Promise<SchemaError> {
  await client.schema();
  const before = sent.length;
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SchemaError);
  expect(sent.length).toBe(before); // nothing reached QEMU
  return err as SchemaError;
}

const loose = (c: QemuClient) => c as unknown as { execute(cmd: string, args?: unknown): Promise<unknown> };

describe('validation before sending, with the real QEMU 7.2 schema', () => {
  it('wrong JSON type names the member path', async () => {
    const err = await refused(() => loose(client).execute('set_link', { name: 'net0', up: 'yes' }));
    expect(err.message).toBe('set_link.up: expected boolean, got string');
    expect(err.path).toBe('set_link.up');
  });

  it('unknown command, with a suggestion', async () => {
    const err = await refused(() => loose(client).execute('query-statuss'));
    expect(err.message).toMatch(/^query-statuss: unknown command \(QEMU 7\.2\.\d+\)/);
    expect(err.hint).toContain('query-status');
  });

  it('unknown member lists what is accepted', async () => {
    const err = await refused(() => loose(client).execute('set_link', { name: 'net0', up: true, down: false }));
    expect(err.message).toBe('set_link.down: unknown member');
    expect(err.hint).toBe('set_link accepts: name, up');
  });

  it('missing required member', async () => {
    const err = await refused(() => loose(client).execute('set_link', { name: 'net0' }));
    expect(err.message).toBe('set_link.up: missing required member');
  });

  it('integer members reject fractions', async () => {
    const err = await refused(() => loose(client).execute('balloon', { value: 1.5 }));
    expect(err.message).toBe('balloon.value: expected integer, got a fraction');
  });

  it('value not in the enum', async () => {
    const err = await refused(() => loose(client).execute('query-cpu-model-expansion', { type: 'huge', model: { name: 'max' } }));
    expect(err.path).toBe('query-cpu-model-expansion.type');
    expect(err.message).toMatch(/"huge" is not one of static, full/);
  });

  it('arrays: the element index is in the path', async () => {
    const err = await refused(() =>
      loose(client).execute('migrate-set-capabilities', {
        capabilities: [
          { capability: 'xbzrle', state: true },
          { capability: 'events', state: 'on' },
        ],
      }),
    );
    expect(err.message).toBe('migrate-set-capabilities.capabilities[1].state: expected boolean, got string');
  });

  it('flat unions: tag checked, branch members allowed, others refused', async () => {
    const bad = await refused(() => loose(client).execute('blockdev-add', { driver: 'qcow3', 'node-name': 'n0' }));
    expect(bad.path).toBe('blockdev-add.driver');
    const foreign = await refused(() =>
      loose(client).execute('blockdev-add', { driver: 'null-co', 'node-name': 'n0', filename: '/x' }),
    );
    expect(foreign.message).toBe('blockdev-add.filename: unknown member');
    // A branch member of the right branch is accepted by us and by QEMU.
    await expect(client.execute('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size: 4096 })).resolves.toEqual({});
  });

  it('alternates: any member type may match, otherwise all are listed', async () => {
    const err = await refused(() =>
      loose(client).execute('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: 42 }),
    );
    expect(err.message).toBe('blockdev-add.file: expected object or string, got number');
    // The object form is validated as the nested union it is.
    const nested = await refused(() =>
      loose(client).execute('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: { driver: 'null-co', size: '1' } }),
    );
    expect(nested.message).toBe('blockdev-add.file.size: expected integer, got string');
    // The string form (a node name) goes through.
    await expect(client.execute('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: 'n0' })).resolves.toEqual({});
  });

  it('nested objects', async () => {
    const err = await refused(() =>
      loose(client).execute('blockdev-add', { driver: 'null-co', 'node-name': 'n1', cache: { direct: 'yes' } }),
    );
    expect(err.message).toBe('blockdev-add.cache.direct: expected boolean, got string');
  });

  it('valid calls reach QEMU, whose own errors stay QmpCommandError', async () => {
    const err = await client.execute('set_link', { name: 'nonexistent0', up: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpCommandError);
    expect(sent.at(-1)).toBe('set_link');
  });

  it('deprecated and unstable use is reported once per path', async () => {
    warnings.length = 0;
    for (let i = 0; i < 3; i++) await client.execute('x-debug-query-block-graph');
    expect(warnings).toEqual([
      { path: 'x-debug-query-block-graph', feature: 'unstable', message: expect.stringContaining('unstable') as unknown },
    ]);
    // Members too: `eject.device` is deprecated (use `id`); QEMU then fails on the missing device.
    warnings.length = 0;
    for (let i = 0; i < 2; i++) await client.execute('eject', { device: 'nope0' }).catch(() => undefined);
    await client.execute('eject', { id: 'nope0' }).catch(() => undefined);
    expect(warnings.map((w) => `${w.feature} ${w.path}`)).toEqual(['deprecated eject.device']);
    expect(warnings[0]!.message).toBe('QMP: eject.device is deprecated in this QEMU and may be removed');
  });
});

describe('switching validation off', () => {
  it('validate: false sends the call as is', async () => {
    const q = await startQemu();
    const c = await QemuClient.connect({ path: q.qmpPath }, { validate: false, schemaCache: false });
    try {
      const err = await loose(c).execute('set_link', { name: 'net0', up: 'yes' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpCommandError);
      expect((err as QmpCommandError).message).toMatch(/up.*bool|Invalid parameter type/i);
      expect(c.loadedSchema).toBeUndefined(); // nothing fetched just for validation
    } finally {
      await c.close();
      await q.stop();
    }
  });
});

describe('validateCommand edge cases (same real schema, no I/O)', () => {
  const check = async (command: string, args: unknown) => {
    const model = await client.schema();
    try {
      validateCommand(model, command, args);
      return 'ok';
    } catch (err) {
      return (err as SchemaError).message;
    }
  };

  it('undefined members count as absent, like JSON.stringify', async () => {
    expect(await check('set_link', { name: 'n', up: true, extra: undefined })).toBe('ok');
    expect(await check('set_link', { name: 'n', up: undefined })).toBe('set_link.up: missing required member');
  });

  it('non-JSON values are refused, `any` accepts every JSON value', async () => {
    expect(await check('balloon', { value: Number.POSITIVE_INFINITY })).toBe('balloon.value: expected integer, got non-JSON value');
    expect(await check('qom-set', { path: '/machine', property: 'p', value: { deep: [1, 'x', null] } })).toBe('ok');
    expect(await check('qom-set', { path: '/machine', property: 'p', value: 10n })).toBe('qom-set.value: expected any JSON value, got non-JSON value');
  });

  it('alternates with null', async () => {
    expect(await check('migrate-set-parameters', { 'tls-authz': null })).toBe('ok');
    expect(await check('migrate-set-parameters', { 'tls-authz': 'authz0' })).toBe('ok');
    expect(await check('migrate-set-parameters', { 'tls-authz': 1 })).toBe('migrate-set-parameters.tls-authz: expected string or null, got number');
  });

  it('arguments must be an object', async () => {
    expect(await check('set_link', ['n', true])).toBe('set_link: expected object, got array');
  });

  it('values of secret-looking members are never echoed', async () => {
    const msg = await check('set_password', { protocol: 'hunter2-protocol', password: 'hunter2' });
    expect(msg).toMatch(/^set_password\.protocol: the value is not one of /);
    expect(msg).not.toContain('hunter2');
  });
});
