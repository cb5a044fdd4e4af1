/**
 * The schema layer through both routes of the hybrid facade (second QMP monitor and libvirt's
 * passthrough), on a real TCG guest in a private libvirtd: QemuClient only uses the client's public
 * API, so typed calls, validation and supports() must behave the same whatever carries the messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import type { QmpMessage } from '../../src/qmp/transport.js';
import { QemuClient, SchemaError } from '../../src/schema/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';

let lv: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'sch' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {} }); // taint is the facade's business, not ours
  guest = await hv.defineGuest(tinyGuestXml({ name: `schema-${process.pid % 10000}` }), { qmpSocket: true });
  await guest.start();
});
afterAll(async () => {
  if (guest) {
    await guest.destroy().catch(() => undefined);
    await guest.undefine().catch(() => undefined);
  }
  await hv?.close();
  await lv?.stop();
});

describe.each(['monitor', 'passthrough'] as const)('through the %s route', (via) => {
  it('typed calls, validation before sending, supports() and wrappers', async () => {
    const sent: string[] = [];
    const qmp = await guest.qmp({ via, client: { onTraffic: (dir, m: QmpMessage) => dir === 'out' && sent.push(String(m.execute)) } });
    try {
      expect(qmp).toBeInstanceOf(QemuClient);
      const status = await qmp.execute('query-status');
      expect(status.running).toBe(true);
      expect(await qmp.commands.queryStatus()).toEqual(status);
      expect(await qmp.supports('set_link', 'up')).toBe(true);
      expect(await qmp.supports('set_link', 'down')).toBe(false);
      expect(await qmp.supportsEvent('SHUTDOWN', 'reason')).toBe(true);
      expect((await qmp.schema()).versionString).toBe(`${qmp.greeting.version.qemu.major}.${qmp.greeting.version.qemu.minor}.${qmp.greeting.version.qemu.micro}`);

      const before = sent.length;
      const err = await qmp.execute('set_link', { name: 'net0', up: 'no' as unknown as boolean }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaError);
      expect((err as SchemaError).message).toBe('set_link.up: expected boolean, got string');
      const wrapped = await qmp.commands.setLink({ name: 'net0', up: true, extra: 1 } as never).catch((e: unknown) => e);
      expect((wrapped as SchemaError).message).toBe('set_link.extra: unknown member');
      expect(sent.length).toBe(before); // neither reached QEMU
    } finally {
      await qmp.close();
    }
  });
});
