import { expectTypeOf, test } from 'vitest';
import type { ConnectPtr, DomainPtr } from '../../native/libvirt.js';

test('a domain pointer is not a connection pointer', () => {
  expectTypeOf<DomainPtr>().not.toEqualTypeOf<ConnectPtr>();
  expectTypeOf<DomainPtr>().not.toMatchTypeOf<ConnectPtr>();
  expectTypeOf<bigint>().not.toMatchTypeOf<DomainPtr>();
  expectTypeOf<DomainPtr>().toMatchTypeOf<bigint>();
});
