/**
 * guest.events(), the merged stream: which route carries QMP events, filters, and how a stream ends,
 * against a fake libvirt domain (its lifecycle and relayed QEMU events) and a real bare QEMU monitor.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GuestNotRunningError } from '../../src/hybrid/errors.js';
import { uncheckedEventNames, type GuestEvent, type GuestEventStream } from '../../src/hybrid/guest-events.js';
import { FakeDomain, fakeGuest } from '../harness/fake-libvirt.js';
import { startQemu } from '../harness/qemu.js';
import { nextMatching, waitFor } from '../harness/wait.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function guestWith(options: { monitor: boolean; running?: boolean }) {
  const domain = new FakeDomain({ running: options.running ?? true });
  if (options.monitor) {
    const q = await startQemu();
    cleanups.push(() => q.stop());
    domain.monitorPath = q.qmpPath;
  }
  const fake = fakeGuest(domain);
  cleanups.push(() => fake.guest.close());
  return fake;
}

const next = (s: GuestEventStream, matches: (e: GuestEvent) => boolean) => nextMatching(s, matches, { what: 'a matching guest event' });

describe('guest.events() routes', () => {
  it('auto takes QMP events from the second monitor when it answers', async () => {
    const { guest } = await guestWith({ monitor: true });
    const events = guest.events({ libvirt: false });
    await events.ready;
    expect(events.qmpRoute).toBe('monitor');
    const qmp = await guest.qmp({ validate: false });
    await qmp.execute('stop');
    expect(await next(events, (e) => e.source === 'qmp')).toMatchObject({ source: 'qmp', route: 'monitor', event: 'STOP' });
    await events.return();
    await qmp.close();
  });

  it('auto falls back to the events libvirt relays when there is no monitor, with libvirt applying the name filter', async () => {
    const { guest, domain } = await guestWith({ monitor: false });
    const events = guest.events({ libvirt: false, qmp: ['RESUME'] });
    await events.ready;
    expect(events.qmpRoute).toBe('passthrough');
    domain.emitQmp('STOP');
    domain.emitQmp('RESUME');
    expect(await next(events, () => true)).toMatchObject({ source: 'qmp', route: 'passthrough', event: 'RESUME' });
    await events.return();
  });

  it('auto also falls back for a guest that is not running yet (libvirt relays its events once it starts)', async () => {
    const { guest } = await guestWith({ monitor: false, running: false });
    const events = guest.events();
    await events.ready;
    expect(events.qmpRoute).toBe('passthrough');
    await events.return();
  });

  it("via 'monitor' on a guest that is not running ends the stream with GuestNotRunningError", async () => {
    const { guest } = await guestWith({ monitor: false, running: false });
    const events = guest.events({ via: 'monitor' });
    await expect(events.ready).rejects.toBeInstanceOf(GuestNotRunningError);
    await expect(events.next()).rejects.toBeInstanceOf(GuestNotRunningError);
  });

  it('filters QMP events by name on the monitor route too', async () => {
    const { guest } = await guestWith({ monitor: true });
    const events = guest.events({ via: 'monitor', libvirt: false, qmp: ['RESUME'] });
    await events.ready;
    expect(events.qmpRoute).toBe('monitor');
    const qmp = await guest.qmp({ validate: false });
    await qmp.execute('stop');
    await qmp.execute('cont');
    expect(await next(events, () => true)).toMatchObject({ event: 'RESUME' });
    await events.return();
    await qmp.close();
  });
});

describe('guest.events() merging and ending', () => {
  it("carries libvirt's lifecycle events, tagged with their source", async () => {
    const { guest, domain } = await guestWith({ monitor: false });
    const events = guest.events({ qmp: false });
    await events.ready;
    domain.emit('suspended', 'paused');
    expect(await next(events, () => true)).toMatchObject({ source: 'libvirt', kind: 'lifecycle', event: 'suspended', detail: 'paused', guest: domain.name });
    await events.return();
  });

  it('return() unsubscribes from every source', async () => {
    const { guest, domain } = await guestWith({ monitor: false });
    const events = guest.events();
    await events.ready;
    expect(domain.openSubscriptions).toBe(2); // libvirt's domain events and its relayed QEMU events
    await events.return();
    await waitFor('the subscriptions to be released', () => domain.openSubscriptions === 0);
  });

  it('the signal ends the stream', async () => {
    const { guest } = await guestWith({ monitor: false });
    const ac = new AbortController();
    const events = guest.events({ signal: ac.signal });
    await events.ready;
    const pending = events.next();
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it('bad options fail at once, before anything is subscribed', async () => {
    const { guest, domain } = await guestWith({ monitor: false });
    expect(() => guest.events({ libvirt: ['crashed' as 'lifecycle'] })).toThrow(/libvirt must be/);
    expect(() => guest.events({ qmp: uncheckedEventNames(['no spaces allowed']) })).toThrow(/is not a QEMU event name/);
    expect(domain.openSubscriptions).toBe(0);
  });
});
