/** Compile-time checks of the facade's QMP client: QemuClient's types plus the policy's per-call option. */
import { describe, expectTypeOf, it } from 'vitest';
import type { QueryStatusReturn } from '../../src/generated/index.js';
import type { GuestQmpClient } from '../../src/hybrid/index.js';
import type { QemuClient } from '../../src/schema/index.js';

declare const qmp: GuestQmpClient;
declare const plain: QemuClient;

describe('GuestQmpClient', () => {
  it('is a QemuClient: typed commands, wrappers and events', () => {
    expectTypeOf(qmp.execute('query-status')).resolves.toEqualTypeOf<QueryStatusReturn>();
    expectTypeOf(qmp.commands.queryStatus()).resolves.toEqualTypeOf<QueryStatusReturn>();
    // @ts-expect-error typo of query-status
    void qmp.execute('query-statsu');
    // @ts-expect-error typo of STOP
    void qmp.waitForEvent('STOPP');
  });

  it('takes allowUnsafe per call, on every entry point; a plain QemuClient does not', () => {
    void qmp.execute('device_add', { driver: 'e1000', id: 'n1' }, { allowUnsafe: true });
    void qmp.commands.deviceAdd({ driver: 'e1000', id: 'n1' }, { allowUnsafe: true });
    void qmp.hmp('quit', { allowUnsafe: true });
    void qmp.executeUnchecked('x-newer', {}, { allowUnsafe: true });
    void qmp.executeAndWait('stop', undefined, { name: 'STOP' }, { allowUnsafe: true });
    // @ts-expect-error allowUnsafe is the facade's option, not QemuClient's
    void plain.execute('device_add', { driver: 'e1000', id: 'n1' }, { allowUnsafe: true });
    // @ts-expect-error it is a boolean
    void qmp.execute('device_add', { driver: 'e1000', id: 'n1' }, { allowUnsafe: 'yes' });
  });
});
