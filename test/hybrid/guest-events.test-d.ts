import { expectTypeOf, test } from 'vitest';
import { uncheckedEventNames, type Guest, type GuestQmpEvent } from '../../src/hybrid/index.js';

declare const guest: Guest;

test('qmp names narrow the QMP events of guest.events(), with their data typed by the schema', async () => {
  const stream = guest.events({ qmp: ['BLOCK_JOB_COMPLETED', 'STOP'] });
  for await (const ev of stream) {
    if (ev.kind !== 'qmp') continue;
    expectTypeOf(ev.event).toEqualTypeOf<'BLOCK_JOB_COMPLETED' | 'STOP'>();
    if (ev.event === 'BLOCK_JOB_COMPLETED') expectTypeOf(ev.data.device).toEqualTypeOf<string>();
  }
});

test('a typo in a QMP event name does not compile', () => {
  // @ts-expect-error 'STOPP' is not an event QEMU's schema knows
  guest.events({ qmp: ['STOPP'] });
});

test('every event (qmp: true) and uncheckedEventNames() give untyped QMP events', async () => {
  for await (const ev of guest.events({ qmp: true })) if (ev.kind === 'qmp') expectTypeOf(ev.event).toEqualTypeOf<string>();
  for await (const ev of guest.events({ qmp: uncheckedEventNames(['X_NEWER_EVENT']) })) {
    if (ev.kind === 'qmp') expectTypeOf(ev.data).toEqualTypeOf<Record<string, unknown> | undefined>();
  }
  expectTypeOf<GuestQmpEvent['data']>().toEqualTypeOf<Record<string, unknown> | undefined>();
});
