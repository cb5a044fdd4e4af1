/**
 * Type-level tests: typed execute(), wrappers and events. Every `@ts-expect-error` below must be an
 * error, so `tsc --noEmit` (and vitest's typecheck) fail if the generated types ever become loose.
 */
import { describe, expectTypeOf, test } from 'vitest';
import type {
  BlockdevAddArguments,
  EmptyObject,
  QemuCommands,
  QemuEvents,
  QueryBlockReturn,
  QueryStatusReturn,
  QueryStatusReturnStatus,
  SetLinkArguments,
  ShutdownEvent,
} from '../../src/generated/index.js';
import type { CommandMap, EventMap } from '../../src/qmp/command-map.js';
import { QemuClient, SchemaClient, commandWrappers } from '../../src/schema/index.js';

declare const client: QemuClient;

describe('generated maps', () => {
  test('have the shape QmpClient expects', () => {
    expectTypeOf<QemuCommands>().toExtend<CommandMap>();
    expectTypeOf<QemuEvents>().toExtend<EventMap>();
    expectTypeOf<QemuCommands['set_link']>().toEqualTypeOf<{ args: SetLinkArguments; returns: EmptyObject }>();
    expectTypeOf<QemuCommands['query-status']['args']>().toEqualTypeOf<undefined>();
    expectTypeOf<SetLinkArguments>().toEqualTypeOf<{ name: string; up: boolean }>();
    expectTypeOf<QueryStatusReturn['status']>().toEqualTypeOf<QueryStatusReturnStatus>();
    expectTypeOf<'running'>().toExtend<QueryStatusReturnStatus>();
    expectTypeOf<'sprinting'>().not.toExtend<QueryStatusReturnStatus>();
  });
});

describe('execute()', () => {
  test('typed arguments and results', () => {
    expectTypeOf(client.execute('query-status')).resolves.toEqualTypeOf<QueryStatusReturn>();
    expectTypeOf(client.execute('set_link', { name: 'net0', up: false })).resolves.toEqualTypeOf<EmptyObject>();
    expectTypeOf(client.execute('query-block')).resolves.toEqualTypeOf<QueryBlockReturn>();
    expectTypeOf(client.execute('query-version')).resolves.toHaveProperty('package');
  });

  test('wrong arguments do not compile', () => {
    // @ts-expect-error wrong member type
    void client.execute('set_link', { name: 'net0', up: 'no' });
    // @ts-expect-error unknown member
    void client.execute('set_link', { name: 'net0', up: true, down: true });
    // @ts-expect-error missing required member
    void client.execute('set_link', { name: 'net0' });
    // @ts-expect-error arguments are required when a member is
    void client.execute('set_link');
    // @ts-expect-error value not in the enum
    void client.execute('query-cpu-model-expansion', { type: 'huge', model: { name: 'max' } });
    // @ts-expect-error a command that takes no arguments
    void client.execute('query-status', { verbose: true });
    // @ts-expect-error arrays are typed element by element
    void client.execute('migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle', state: 'on' }] });
  });

  test('flat unions: the tag selects the members', () => {
    const file: BlockdevAddArguments = { driver: 'file', 'node-name': 'disk0', filename: '/tmp/x.img' };
    void client.execute('blockdev-add', file);
    void client.execute('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size: 4096 });
    // @ts-expect-error `filename` belongs to the file branch, not null-co
    void client.execute('blockdev-add', { driver: 'null-co', 'node-name': 'n0', filename: '/x' });
    // @ts-expect-error unknown driver
    void client.execute('blockdev-add', { driver: 'qcow3', 'node-name': 'n0' });
    // alternates: a node name or a nested definition
    void client.execute('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: 'n0' });
    void client.execute('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: { driver: 'null-co' } });
    // @ts-expect-error neither form
    void client.execute('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: 42 });
  });

  test('commands newer than the generated module stay callable through the escape hatch, untyped', () => {
    expectTypeOf(client.executeUnchecked('x-command-from-the-future', { anything: 1 })).resolves.toBeUnknown();
    expectTypeOf(client.untyped.execute('x-command-from-the-future')).resolves.toBeUnknown();
  });

  test('a typo in a command name does not compile', () => {
    // @ts-expect-error typo of query-status
    void client.execute('query-statsu');
    // @ts-expect-error unknown names need executeUnchecked
    void client.execute('x-command-from-the-future', { anything: 1 });
    // @ts-expect-error typo of set_link (QEMU spells it with an underscore)
    void client.execute('set-link', { name: 'net0', up: true });
  });
});

describe('camelCase wrappers', () => {
  test('are typed like execute()', () => {
    expectTypeOf(client.commands.queryStatus()).resolves.toEqualTypeOf<QueryStatusReturn>();
    expectTypeOf(client.commands.setLink).parameter(0).toEqualTypeOf<SetLinkArguments>();
    void client.commands.setLink({ name: 'net0', up: true }, { timeoutMs: 1000 });
    // @ts-expect-error wrong member type
    void client.commands.setLink({ name: 'net0', up: 1 });
    // @ts-expect-error no such wrapper
    void client.commands.setLinkk;
  });
});

describe('events', () => {
  test('payloads are typed by name', async () => {
    for await (const ev of client.events({ names: ['SHUTDOWN', 'STOP'] })) {
      if (ev.event === 'SHUTDOWN') expectTypeOf(ev.data).toEqualTypeOf<ShutdownEvent>();
      else expectTypeOf(ev.data).toEqualTypeOf<undefined>();
    }
    const shutdown = await client.waitForEvent('SHUTDOWN');
    expectTypeOf(shutdown.data.reason).toExtend<string>();
    // @ts-expect-error not a member of SHUTDOWN's data
    void shutdown.data.cause;
  });

  test('a typo in an event name does not compile; the untyped view reaches newer events', () => {
    // @ts-expect-error typo of SHUTDOWN
    void client.waitForEvent('SHUTDWON');
    // @ts-expect-error typo in a names filter
    void client.events({ names: ['STOP', 'RESUMED'] });
    expectTypeOf(client.untyped.waitForEvent('EVENT_FROM_THE_FUTURE')).resolves.toHaveProperty('data');
  });
});

describe('QemuClient', () => {
  test('connect() returns a QemuClient and takes schema options', () => {
    expectTypeOf(QemuClient.connect({ path: '/x' }, { validate: false })).resolves.toEqualTypeOf<QemuClient>();
    expectTypeOf(client.supports('set_link', 'up')).resolves.toBeBoolean();
  });
});

describe('SchemaClient with maps generated for another QEMU', () => {
  type OtherCommands = { 'x-new-thing': { args: { level: number }; returns: { ok: boolean } }; 'query-status': { args: undefined; returns: { status: string } } };
  type OtherEvents = { NEW_EVENT: { count: number } };
  const otherNames = { xNewThing: 'x-new-thing', queryStatus: 'query-status' } as const;
  class OtherQemu extends SchemaClient<OtherCommands, OtherEvents> {}

  test('typed by its own maps', async () => {
    const other = await OtherQemu.connect({ path: '/x' });
    expectTypeOf(other).toEqualTypeOf<OtherQemu>();
    expectTypeOf(other.execute('x-new-thing', { level: 2 })).resolves.toEqualTypeOf<{ ok: boolean }>();
    // @ts-expect-error wrong member type for this QEMU's command
    void other.execute('x-new-thing', { level: 'high' });
    const cmds = commandWrappers<OtherCommands, typeof otherNames>(other, otherNames);
    expectTypeOf(cmds.xNewThing({ level: 1 })).resolves.toEqualTypeOf<{ ok: boolean }>();
    expectTypeOf((await other.waitForEvent('NEW_EVENT')).data.count).toBeNumber();
  });
});
