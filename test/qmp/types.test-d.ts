/** Compile-time checks of QmpClient's typed commands and events. */
import { describe, expectTypeOf, it } from 'vitest';
import { QmpClient, type CommandMap, type CommandName, type EventName, type QmpEvent, type QmpEventData } from '../../src/qmp/index.js';

type Commands = {
  'query-status': { args: undefined; returns: { status: string; running: boolean } };
  'set-link': { args: { name: string; up: boolean }; returns: Record<string, never> };
  'query-opts': { args: { option?: string }; returns: string[] };
};
type Events = {
  STOP: undefined;
  BLOCK_JOB_COMPLETED: { device: string; len: number };
};

declare const client: QmpClient<Commands, Events>;
declare const loose: QmpClient;

describe('typed QmpClient', () => {
  it('types known commands, keeps unknown ones loose', () => {
    expectTypeOf(client.execute('query-status')).resolves.toEqualTypeOf<{ status: string; running: boolean }>();
    expectTypeOf(client.execute('set-link', { name: 'n0', up: true })).resolves.toEqualTypeOf<Record<string, never>>();
    expectTypeOf(client.execute('query-opts')).resolves.toEqualTypeOf<string[]>();
    expectTypeOf(client.execute('query-opts', { option: 'x' }, { timeoutMs: 5 })).resolves.toEqualTypeOf<string[]>();
    expectTypeOf(client.executeUnchecked('x-newer-command', { anything: 1 })).resolves.toEqualTypeOf<unknown>();
    expectTypeOf(client.untyped.execute('x-newer-command', { anything: 1 })).resolves.toEqualTypeOf<unknown>();
    expectTypeOf(loose.execute('query-status')).resolves.toEqualTypeOf<unknown>();
    expectTypeOf(loose.execute('any-name-at-all', { a: 1 })).resolves.toEqualTypeOf<unknown>();
  });

  it('accepts only the map\'s command names (editors complete them); a typo does not compile', () => {
    expectTypeOf<CommandName<Commands>>().toEqualTypeOf<'query-status' | 'set-link' | 'query-opts'>();
    expectTypeOf<EventName<Events>>().toEqualTypeOf<'STOP' | 'BLOCK_JOB_COMPLETED'>();
    // @ts-expect-error: a typo of query-status
    void client.execute('query-statsu');
    // @ts-expect-error: a command the map does not know needs executeUnchecked
    void client.execute('x-newer-command', { anything: 1 });
    // @ts-expect-error: executeAndWait takes the same names
    void client.executeAndWait('query-statsu', undefined, { name: 'STOP' });
    // the untyped client (no command map) takes any string
    expectTypeOf<CommandName<{}>>().toEqualTypeOf<string>();
    expectTypeOf<CommandName<CommandMap>>().toEqualTypeOf<string>();
  });

  it('accepts only the map\'s event names; the untyped view reaches others', () => {
    // @ts-expect-error: a typo of STOP
    void client.waitForEvent('STOPP');
    // @ts-expect-error: names are checked in events() too
    void client.events({ names: ['BLOCK_JOB_COMPLETE'] });
    // @ts-expect-error: and in on('event')
    client.on('event', () => {}, { names: ['STOPP'] });
    // @ts-expect-error: and in executeAndWait's event
    void client.executeAndWait('query-status', undefined, { name: 'STOPP' });
    expectTypeOf(loose.waitForEvent('ANY_EVENT')).resolves.toEqualTypeOf<QmpEvent<'ANY_EVENT', QmpEventData>>();
  });

  it('rejects wrong members, wrong types, and missing required args', () => {
    // @ts-expect-error: wrong member type
    void client.execute('set-link', { name: 'n0', up: 'yes' });
    // @ts-expect-error: unknown member
    void client.execute('set-link', { name: 'n0', up: true, extra: 1 });
    // @ts-expect-error: required args missing
    void client.execute('set-link');
    // @ts-expect-error: query-status takes no arguments
    void client.execute('query-status', { verbose: true });
  });

  it('types event payloads by name', () => {
    const sub = client.events({ names: ['BLOCK_JOB_COMPLETED'] });
    expectTypeOf(sub.next()).resolves.toEqualTypeOf<IteratorResult<QmpEvent<'BLOCK_JOB_COMPLETED', { device: string; len: number }>>>();
    expectTypeOf(client.waitForEvent('BLOCK_JOB_COMPLETED')).resolves.toEqualTypeOf<QmpEvent<'BLOCK_JOB_COMPLETED', { device: string; len: number }>>();
    expectTypeOf(client.untyped.waitForEvent('NEWER_EVENT')).resolves.toEqualTypeOf<QmpEvent<'NEWER_EVENT', QmpEventData>>();
    client.on('event', (e) => expectTypeOf(e.data).toEqualTypeOf<{ device: string; len: number }>(), { names: ['BLOCK_JOB_COMPLETED'] });
    void client.waitForEvent('BLOCK_JOB_COMPLETED', { match: (e) => e.data.len > 0 });
    client.on('event', (e) => {
      if (e.event === 'BLOCK_JOB_COMPLETED') expectTypeOf(e.data).toMatchTypeOf<{ device: string; len: number } | QmpEventData>();
    });
  });

  it('connect on a subclass returns the subclass', () => {
    class MyClient extends QmpClient<Commands, Events> {}
    expectTypeOf(MyClient.connect({ path: '/x' })).resolves.toEqualTypeOf<MyClient>();
    // On QmpClient itself the maps are the loose CommandMap/EventMap; it still fits a QmpClient variable.
    const plain: Promise<QmpClient> = QmpClient.connect({ path: '/x' });
    void plain;
    expectTypeOf(QmpClient.connect({ path: '/x' }).then((c) => c.execute('anything', { a: 1 }))).resolves.toEqualTypeOf<unknown>();
  });

  it('per-call options a client adds are typed through its third parameter, not a global augmentation', () => {
    type Extra = { allowUnsafe?: boolean };
    const withExtra = {} as QmpClient<Commands, Events, Extra>;
    void withExtra.execute('query-status', undefined, { allowUnsafe: true, timeoutMs: 5 });
    void withExtra.hmp('info status', { allowUnsafe: true });
    // @ts-expect-error: a client without the extra options does not accept them
    void client.execute('query-status', undefined, { allowUnsafe: true });
    // @ts-expect-error: wrong type of an extra option
    void withExtra.execute('query-status', undefined, { allowUnsafe: 'yes' });
  });
});

describe('subclass with extra members', () => {
  it('connect returns it', () => {
    class Extra extends QmpClient<Commands, Events> {
      extra(): number {
        return 1;
      }
    }
    class Plain extends QmpClient {
      hello(): string {
        return 'hi';
      }
    }
    expectTypeOf(Extra.connect({ path: '/x' })).resolves.toEqualTypeOf<Extra>();
    expectTypeOf(Plain.connect({ path: '/x' })).resolves.toEqualTypeOf<Plain>();
  });
});
