/** Compile-time checks: every kind of QMP client of the library can back a proxy. */
import { describe, expectTypeOf, it } from 'vitest';
import type { GuestQmpClient } from '../../src/hybrid/index.js';
import type { ProxyBackend, QmpProxy, QmpProxyOptions } from '../../src/proxy/index.js';
import type { QmpClient } from '../../src/qmp/index.js';
import type { QemuClient } from '../../src/schema/index.js';

describe('ProxyBackend', () => {
  it('accepts QmpClient, QemuClient and the facade\'s GuestQmpClient', () => {
    expectTypeOf<QmpClient>().toExtend<ProxyBackend>();
    expectTypeOf<QemuClient>().toExtend<ProxyBackend>();
    expectTypeOf<GuestQmpClient>().toExtend<ProxyBackend>();
    expectTypeOf<typeof QmpProxy.start>().parameter(0).toEqualTypeOf<ProxyBackend>();
  });

  it('needs a listen path', () => {
    expectTypeOf<QmpProxyOptions>().toHaveProperty('listen').toEqualTypeOf<string>();
    // @ts-expect-error -- listen is required
    const missing: QmpProxyOptions = {};
    void missing;
  });
});
