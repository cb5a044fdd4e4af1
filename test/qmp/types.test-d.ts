/** Compile-time checks of QmpClient's typed commands and events. */
import { describe, expectTypeOf, it } from 'vitest';
import { QmpClient, type QmpEvent, type QmpEventData } from '../../src/qmp/index.js';

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
    expectTypeOf(client.execute('x-newer-command', { anything: 1 })).resolves.toEqualTypeOf<unknown>();
    expectTypeOf(loose.execute('query-status')).resolves.toEqualTypeOf<unknown>();
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
    expectTypeOf(client.waitForEvent('NEWER_EVENT')).resolves.toEqualTypeOf<QmpEvent<'NEWER_EVENT', QmpEventData>>();
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
