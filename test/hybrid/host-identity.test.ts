/**
 * Which daemon is on this machine: by its unix socket, else by libvirt's host UUID, never by how a
 * network URI is spelt. A private daemon with a host UUID of its own stands for another host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAME_HOST_UUIDS_ENV, hostUuidFromCapabilities, isUnixSocketUri, placeDaemon, thisHostUuids } from '../../src/domain/host-identity.js';
import { Hypervisor, MonitorUnavailableError } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';

describe('host identity (unit)', () => {
  it('reads the host UUID from capabilities and tells unix-socket URIs from network ones', () => {
    expect(hostUuidFromCapabilities('<capabilities><host><uuid>AB6D2C2A-0F6C-4C1E-9A5D-0123456789AB</uuid><cpu/></host><guest/></capabilities>')).toBe('ab6d2c2a-0f6c-4c1e-9a5d-0123456789ab');
    expect(hostUuidFromCapabilities('<capabilities><guest><uuid>ab6d2c2a-0f6c-4c1e-9a5d-0123456789ab</uuid></guest></capabilities>')).toBeUndefined();
    expect(isUnixSocketUri('qemu:///session')).toBe(true);
    expect(isUnixSocketUri('qemu+unix:///system?socket=/x')).toBe(true);
    expect(isUnixSocketUri('qemu+tcp://127.0.0.1:16509/session')).toBe(false);
    expect(isUnixSocketUri('qemu+ssh://localhost/system')).toBe(false);
  });

  it('takes a unix socket as local without asking, and a network URI by host UUID only', async () => {
    let asked = 0;
    const caps = (uuid: string) => async () => (asked++, `<capabilities><host><uuid>${uuid}</uuid></host></capabilities>`);
    expect(await placeDaemon('qemu:///session', caps('00000000-0000-4000-8000-000000000001'))).toEqual({ local: true, reason: 'unix-socket' });
    expect(asked).toBe(0);
    const mine = [...thisHostUuids()][0];
    if (mine) expect(await placeDaemon('qemu+tcp://elsewhere.example/system', caps(mine))).toMatchObject({ local: true, reason: 'host-uuid' });
    // localhost spelt out proves nothing: the UUID decides
    expect(await placeDaemon('qemu+tcp://127.0.0.1:1/session', caps('00000000-0000-4000-8000-00000000000f'))).toEqual({
      local: false,
      reason: 'other-host-uuid',
      hostUuid: '00000000-0000-4000-8000-00000000000f',
    });
    expect(await placeDaemon('qemu+tcp://127.0.0.1:1/session', async () => Promise.reject(new Error('no caps')))).toEqual({ local: false, reason: 'unknown-host-uuid' });
    expect(thisHostUuids({ [SAME_HOST_UUIDS_ENV]: '00000000-0000-4000-8000-00000000000F, not-a-uuid' }).has('00000000-0000-4000-8000-00000000000f')).toBe(true);
  });
});

describe('host identity on real private daemons over TCP', () => {
  let here: PrivateLibvirtd;
  let elsewhere: PrivateLibvirtd;
  beforeAll(async () => {
    [here, elsewhere] = await Promise.all([
      startPrivateLibvirtd({ prefix: 'hidh', tcp: true }),
      // a host UUID of its own, not declared as this machine's: it stands for another host
      startPrivateLibvirtd({ prefix: 'hide', tcp: true, hostUuid: '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([here?.stop(), elsewhere?.stop()]);
  });

  it("a daemon of this host reached over qemu+tcp still offers the guest's second monitor", async () => {
    const local = await Hypervisor.connect(here.uri, { monitorDir: here.qmpDir });
    const guest = await local.createGuest(tinyGuestXml({ name: 'hid-here' }), { qmpSocket: true });
    await local.close();
    const hv = await Hypervisor.connect(here.tcpUri!, { monitorDir: here.qmpDir });
    try {
      expect(hv.placement).toMatchObject({ local: true, reason: 'host-uuid' });
      const q = await (await hv.guest('hid-here')).qmp({ via: 'auto' });
      expect(q.route).toBe('monitor');
      expect(await q.execute('query-status')).toMatchObject({ status: 'running' });
      await q.close();
    } finally {
      await hv.close();
      void guest;
    }
  });

  it('a daemon with a host UUID of its own stands for another host: auto picks passthrough, monitor fails typed', async () => {
    const local = await Hypervisor.connect(elsewhere.uri, { monitorDir: elsewhere.qmpDir });
    await local.createGuest(tinyGuestXml({ name: 'hid-far' }), { qmpSocket: true });
    // reached through its unix socket it is, by construction, on this machine
    expect(local.placement).toEqual({ local: true, reason: 'unix-socket' });
    await local.close();
    const hv = await Hypervisor.connect(elsewhere.tcpUri!, { monitorDir: elsewhere.qmpDir });
    try {
      expect(hv.placement).toEqual({ local: false, reason: 'other-host-uuid', hostUuid: '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' });
      const guest = await hv.guest('hid-far');
      const q = await guest.qmp({ via: 'auto' });
      expect(q.route).toBe('passthrough');
      expect(await q.execute('query-status')).toMatchObject({ status: 'running' });
      await q.close();
      const err = await guest.qmp({ via: 'monitor' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MonitorUnavailableError);
      expect((err as MonitorUnavailableError).reason).toBe('remote');
      expect((err as Error).message).toMatch(/host UUID 6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d, which is not this machine's/);
      expect((err as MonitorUnavailableError).hint).toMatch(/via: 'passthrough'.*LIBQEMU_SAME_HOST_UUIDS/);
    } finally {
      await hv.close();
    }
  });
});
