/** How guest.attachDevice()/setMemory()/… choose libvirt's VIR_DOMAIN_AFFECT_* flags, and what they refuse. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { FakeDomain, fakeGuest } from '../harness/fake-libvirt.js';

const DISK = "<disk type='file' device='disk'><source file='/tmp/x.qcow2'/><target dev='vdb' bus='virtio'/></disk>";
const LIVE = 1;
const CONFIG = 2;

describe('guest device and resource changes', () => {
  it('default to live when running plus config when persistent', async () => {
    const running = new FakeDomain({ running: true });
    await fakeGuest(running).guest.attachDevice(DISK);
    const stopped = new FakeDomain();
    await fakeGuest(stopped).guest.detachDevice(DISK);
    const transient = new FakeDomain({ running: true });
    transient.persistent = false;
    await fakeGuest(transient).guest.setMemory(65536);
    expect([running.changes, stopped.changes, transient.changes]).toEqual([[['attachDeviceFlags', LIVE | CONFIG]], [['detachDeviceFlags', CONFIG]], [['setMemoryFlags', LIVE]]]);
  });

  it('take live/config as given', async () => {
    const d = new FakeDomain({ running: true });
    const { guest } = fakeGuest(d);
    await guest.updateDevice(DISK, { live: true, config: false });
    await guest.setVcpus(2, { config: true, live: false });
    await guest.attachDevice(DISK, { config: false });
    expect(d.changes).toEqual([['updateDeviceFlags', LIVE], ['setVcpusFlags', CONFIG], ['attachDeviceFlags', LIVE]]);
  });

  it('updateDevice({ force }) adds VIR_DOMAIN_DEVICE_MODIFY_FORCE', async () => {
    const d = new FakeDomain({ running: true });
    await fakeGuest(d).guest.updateDevice(DISK, { live: true, config: false, force: true });
    expect(d.changes).toEqual([['updateDeviceFlags', LIVE | 4]]);
  });

  it('refuse bad input with a typed error and a hint, before calling libvirt', async () => {
    const d = new FakeDomain({ running: true });
    const { guest } = fakeGuest(d);
    const bad: Array<[string, () => Promise<void>]> = [
      ['not XML', () => guest.attachDevice('vdb')],
      ['nothing to change', () => guest.attachDevice(DISK, { live: false, config: false })],
      ['live not boolean', () => guest.detachDevice(DISK, { live: 'yes' as unknown as boolean })],
      ['memory 0', () => guest.setMemory(0)],
      ['memory fraction', () => guest.setMemory(1.5)],
      ['vcpus 0', () => guest.setVcpus(0)],
      ['force not boolean', () => guest.updateDevice(DISK, { force: 'yes' as unknown as boolean })],
    ];
    for (const [what, call] of bad) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(err, what).toBeInstanceOf(InvalidArgumentError);
    }
    const hinted = await guest.setMemory(-1).catch((e: InvalidArgumentError) => e);
    expect((hinted as InvalidArgumentError).hint).toMatch(/KiB|balloon/);
    expect(d.changes).toEqual([]);
  });

  it('a closed guest rejects (never throws synchronously) with a hint', async () => {
    const { guest } = fakeGuest(new FakeDomain({ running: true }));
    await guest.close();
    const p = guest.attachDevice(DISK);
    await expect(p).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(guest.stats()).rejects.toThrow(/closed/);
    await expect(guest.console()).rejects.toThrow(/closed/);
  });

  it('stats() hands back the context\'s record as a plain object', async () => {
    const { guest } = fakeGuest(new FakeDomain({ running: true }));
    expect(await guest.stats()).toEqual({ 'state.state': 1, 'state.reason': 1 });
  });
});
