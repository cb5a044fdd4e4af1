/**
 * Route choice of guest.qmp() and guest.qmpRoutes(), against a fake libvirt domain and a real bare
 * QEMU: its QMP socket is the guest's second monitor, a second QMP socket stands in for passthrough.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { GuestNotFoundError, GuestNotRunningError, MonitorUnavailableError } from '../../src/hybrid/errors.js';
import { checkVia, qmpRoutes } from '../../src/hybrid/guest-routes.js';
import { summarizeGuests } from '../../src/hybrid/hypervisor.js';
import { FakeDomain, fakeGuest, type FakeGuestOptions } from '../harness/fake-libvirt.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A running QEMU with a monitor socket and a second QMP socket for the "passthrough" route. */
async function qemu(): Promise<QemuInstance & { passthroughPath: string }> {
  const q = await startQemu({ argsFor: (dir) => ['-qmp', `unix:${join(dir, 'pt.sock')},server=on,wait=off`] });
  cleanups.push(() => q.stop());
  return Object.assign(q, { passthroughPath: join(q.dir, 'pt.sock') });
}

async function runningGuest(options: { monitor?: boolean } & FakeGuestOptions = {}) {
  const q = await qemu();
  const domain = new FakeDomain({ running: true, ...(options.monitor === false ? {} : { monitorPath: q.qmpPath }) });
  const fake = fakeGuest(domain, { passthroughPath: () => q.passthroughPath, ...options });
  cleanups.push(() => fake.guest.close());
  return Object.assign(fake, { qemu: q });
}

describe('qmpRoutes (one rule for hv.guests() and guest.qmpRoutes())', () => {
  it.each([
    [{ running: false, monitorSocket: '/s', local: true }, []],
    [{ running: true, monitorSocket: '/s', local: true }, ['monitor', 'passthrough']],
    [{ running: true, monitorSocket: undefined, local: true }, ['passthrough']],
    [{ running: true, monitorSocket: '/s', local: false }, ['passthrough']],
  ] as const)('%o → %o', async (facts, routes) => {
    expect(await qmpRoutes(facts)).toEqual(routes);
  });

  it('asks whether the monitor answers only when there is one to ask', async () => {
    const asked: string[] = [];
    const answers = (v: boolean) => async () => (asked.push(String(v)), v);
    expect(await qmpRoutes({ running: true, monitorSocket: '/s', local: true, monitorAnswers: answers(false) })).toEqual(['passthrough']);
    expect(await qmpRoutes({ running: true, monitorSocket: undefined, local: true, monitorAnswers: answers(true) })).toEqual(['passthrough']);
    expect(await qmpRoutes({ running: false, monitorSocket: '/s', local: true, monitorAnswers: answers(true) })).toEqual([]);
    expect(asked).toEqual(['false']);
  });

  it('checkVia takes the three routes and undefined, and rejects anything else with a hint', () => {
    expect([checkVia(undefined, 'x'), checkVia('auto', 'x'), checkVia('monitor', 'x'), checkVia('passthrough', 'x')]).toEqual(['auto', 'auto', 'monitor', 'passthrough']);
    expect(() => checkVia('socket', 'guest.qmp')).toThrow(InvalidArgumentError);
    expect(() => checkVia('socket', 'guest.qmp')).toThrow(/guest\.qmp: via must be 'auto', 'monitor' or 'passthrough', got "socket"/);
  });
});

describe('guest.qmp() route choice', () => {
  it("auto picks the second monitor when it answers", async () => {
    const { guest } = await runningGuest();
    const client = await guest.qmp({ validate: false });
    expect(client.route).toBe('monitor');
    expect(await client.execute('query-status')).toMatchObject({ status: 'running' });
    await client.close();
  });

  it('auto falls back to passthrough when the XML names no monitor', async () => {
    const fake = await runningGuest({ monitor: false });
    const client = await fake.guest.qmp({ validate: false });
    expect(client.route).toBe('passthrough');
    expect(fake.passthroughOpened).toBe(1);
    await client.close();
  });

  it("via 'monitor' without a monitor in the XML: MonitorUnavailableError 'no-monitor'", async () => {
    const { guest } = await runningGuest({ monitor: false });
    await expect(guest.qmp({ via: 'monitor' })).rejects.toMatchObject({ name: 'MonitorUnavailableError', reason: 'no-monitor' });
  });

  it("a daemon on another host: auto uses passthrough, via 'monitor' fails with reason 'remote'", async () => {
    const fake = await runningGuest({ local: false });
    const err = await fake.guest.qmp({ via: 'monitor' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MonitorUnavailableError);
    expect((err as MonitorUnavailableError).reason).toBe('remote');
    expect(fake.domain.calls.get('xml') ?? 0).toBe(0); // decided without reading the XML
    const client = await fake.guest.qmp({ validate: false });
    expect(client.route).toBe('passthrough');
    await client.close();
  });

  it('a monitor held by another client makes auto fall back to passthrough after the short handshake limit', async () => {
    const fake = await runningGuest();
    const holder = await import('../../src/qmp/client.js').then(({ QmpClient }) => QmpClient.connect({ path: fake.qemu.qmpPath }));
    cleanups.push(() => holder.close());
    const client = await fake.guest.qmp({ validate: false, handshakeTimeoutMs: 200 });
    expect(client.route).toBe('passthrough');
    await client.close();
  });

  it('a stopped guest: GuestNotRunningError, and the socket file its killed QEMU left is removed', async () => {
    const fake = await runningGuest();
    await fake.qemu.kill('SIGKILL');
    fake.domain.stateName = 'shutoff';
    expect(existsSync(fake.qemu.qmpPath)).toBe(true);
    await expect(fake.guest.qmp()).rejects.toBeInstanceOf(GuestNotRunningError);
    expect(existsSync(fake.qemu.qmpPath)).toBe(false);
  });

  it('a domain that is gone (a transient guest that stopped): GuestNotFoundError', async () => {
    const fake = await runningGuest();
    fake.domain.gone = true;
    await expect(fake.guest.qmp()).rejects.toBeInstanceOf(GuestNotFoundError);
  });

  it('passthrough refused by libvirt because QEMU is gone: GuestNotRunningError, not the LibvirtError', async () => {
    const domain = new FakeDomain({ running: true });
    const fake = fakeGuest(domain, { passthroughPath: () => undefined });
    cleanups.push(() => fake.guest.close());
    const err = await fake.guest.qmp({ via: 'passthrough' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestNotRunningError);
    expect((err as GuestNotRunningError).cause).toMatchObject({ codeName: 'VIR_ERR_OPERATION_INVALID' });
  });

  it('rejects a bad via before asking libvirt anything', async () => {
    const domain = new FakeDomain({ running: true });
    const { guest } = fakeGuest(domain);
    await expect(guest.qmp({ via: 'sideways' as 'auto' })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(domain.calls.size).toBe(0);
  });
});

describe('guest.qmpRoutes()', () => {
  it('monitor and passthrough while the monitor answers', async () => {
    const { guest } = await runningGuest();
    expect(await guest.qmpRoutes()).toEqual(['monitor', 'passthrough']);
  });

  it('passthrough only once the monitor socket is stale', async () => {
    const fake = await runningGuest();
    await fake.qemu.kill('SIGKILL'); // libvirt still says running (it has not noticed yet)
    expect(await fake.guest.qmpRoutes()).toEqual(['passthrough']);
  });

  it('nothing for a guest that is not running', async () => {
    const { guest } = fakeGuest(new FakeDomain({ monitorPath: '/tmp/none.sock' }));
    expect(await guest.qmpRoutes()).toEqual([]);
  });
});

describe('hv.guests() listing (summarizeGuests)', () => {
  it('says each guest’s state, monitor socket and routes, sorted by name, without dialling any socket', async () => {
    const up = new FakeDomain({ name: 'b-up', running: true, monitorPath: '/nonexistent/up.sock' });
    const plain = new FakeDomain({ name: 'a-plain', running: true });
    const off = new FakeDomain({ name: 'c-off', monitorPath: '/nonexistent/off.sock' });
    expect(await summarizeGuests([up, plain, off], { local: true })).toEqual([
      { name: 'a-plain', uuid: plain.uuid, state: 'running', routes: ['passthrough'], monitorSocket: undefined },
      { name: 'b-up', uuid: up.uuid, state: 'running', routes: ['monitor', 'passthrough'], monitorSocket: '/nonexistent/up.sock' },
      { name: 'c-off', uuid: off.uuid, state: 'shutoff', routes: [], monitorSocket: '/nonexistent/off.sock' },
    ]);
  });

  it('offers no monitor route on a daemon of another host', async () => {
    const up = new FakeDomain({ running: true, monitorPath: '/nonexistent/up.sock' });
    expect((await summarizeGuests([up], { local: false }))[0]!.routes).toEqual(['passthrough']);
  });

  it('leaves out a transient guest that vanished between list and lookup, and fails on other errors', async () => {
    const gone = new FakeDomain({ running: true });
    gone.gone = true;
    const here = new FakeDomain({ running: true });
    expect((await summarizeGuests([gone, here], { local: true })).map((s) => s.uuid)).toEqual([here.uuid]);
    const broken = new FakeDomain({ running: true });
    broken.xml = () => Promise.reject(new Error('daemon went away'));
    await expect(summarizeGuests([broken], { local: true })).rejects.toThrow('daemon went away');
  });
});
