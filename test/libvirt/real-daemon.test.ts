/** Lifecycle, passthrough, events and errors against a real private libvirtd with a tiny TCG guest. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, LibvirtError, type Domain, type DomainEvent, type QemuMonitorEvent } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';

let daemon: PrivateLibvirtd;
let conn: Connection;
let dom: Domain;

beforeAll(async () => {
  daemon = await startPrivateLibvirtd({ prefix: 'lvrd' });
  conn = await Connection.open(daemon.uri);
  dom = await conn.defineXML(tinyGuestXml({ name: 'rd1' }));
});
afterAll(async () => {
  await dom?.destroy().catch(() => undefined);
  await conn?.close();
  await daemon?.stop();
});

async function take<T>(stream: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  for await (const e of stream) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

describe('a real private libvirtd', () => {
  it('resolves the URI and versions', async () => {
    expect(conn.uri).toBe(daemon.uri);
    expect(await conn.isAlive()).toBe(true);
    expect(await conn.hypervisorVersion()).toMatchObject({ major: 7, minor: 2 });
    expect((await conn.libVersion()).major).toBe(9);
  });

  it('starts, suspends, resumes and destroys, with a lifecycle event for each', async () => {
    const events = conn.domainEvents({ domain: dom, kinds: ['lifecycle'] });
    await dom.start();
    expect(await dom.state()).toEqual({ state: 'running', reason: 'booted' });
    await dom.suspend();
    expect(await dom.state()).toEqual({ state: 'paused', reason: 'user' });
    await dom.resume();
    expect(await dom.state()).toEqual({ state: 'running', reason: 'unpaused' });
    await dom.destroy();
    expect(await dom.state()).toEqual({ state: 'shutoff', reason: 'destroyed' });
    const got = (await take(events, 6)) as Extract<DomainEvent, { kind: 'lifecycle' }>[];
    expect(got.map((e) => `${e.event}/${e.detail}`)).toEqual([
      'resumed/unpaused', // libvirt starts QEMU paused (-S), then continues it
      'started/booted',
      'suspended/paused',
      'resumed/unpaused',
      'shutdown/host', // "finished after host request": QEMU reports the shutdown the destroy caused
      'stopped/destroyed',
    ]);
    expect(got.every((e) => e.domain.name === 'rd1' && e.domain.uuid === dom.uuid)).toBe(true);
    expect(conn.activeSubscriptions).toBe(0);
  });

  describe('on a running guest', () => {
    beforeAll(async () => {
      await dom.start();
    });
    afterAll(async () => {
      await dom.destroy().catch(() => undefined);
    });

    it('passes QMP through libvirt: query-status, and QEMU\'s own error class for an unknown command', async () => {
      const reply = await dom.qemuMonitorCommand('{"execute":"query-status"}');
      expect(reply).toMatchObject({ return: { status: 'running', running: true }, id: expect.stringMatching(/^libvirt-\d+$/) });
      const bad = await dom.qemuMonitorCommand({ execute: 'no-such-command' });
      expect(bad.error).toEqual({ class: 'CommandNotFound', desc: 'The command no-such-command has not been found' });
      expect(await dom.qemuMonitorHmp('info status')).toMatch(/VM status: running/);
      expect(await dom.messages()).toContain('tainted: custom monitor control commands issued');
    });

    it('delivers QEMU monitor events from stop/cont, filtered by libvirt', async () => {
      const all = conn.qemuMonitorEvents({ domain: dom });
      const onlyResume = conn.qemuMonitorEvents({ event: 'resume', nocase: true });
      const byRegex = conn.qemuMonitorEvents({ event: '^(STOP|RESUME)$', regex: true });
      await Promise.all([all.ready, onlyResume.ready, byRegex.ready]);
      await dom.qemuMonitorCommand({ execute: 'stop' });
      expect((await dom.state()).state).toBe('paused');
      await dom.qemuMonitorCommand({ execute: 'cont' });
      const [stop, resume] = (await take(all, 2)) as QemuMonitorEvent[];
      expect(stop).toMatchObject({ domain: { name: 'rd1', uuid: dom.uuid }, event: 'STOP' });
      expect(resume!.event).toBe('RESUME');
      expect(stop!.timestamp.seconds).toBeGreaterThan(1_700_000_000);
      expect(stop!.timestamp.microseconds).toBeGreaterThanOrEqual(0);
      expect(((await take(onlyResume, 1)) as QemuMonitorEvent[])[0]!.event).toBe('RESUME');
      expect(((await take(byRegex, 2)) as QemuMonitorEvent[]).map((e) => e.event)).toEqual(['STOP', 'RESUME']);
      expect(conn.activeSubscriptions).toBe(0);
    });

    it('serves identical QEMU monitor and domain event subscriptions on one connection', async () => {
      const everything = [conn.qemuMonitorEvents({ domain: dom }), conn.qemuMonitorEvents({ domain: dom })];
      const stops = [conn.qemuMonitorEvents({ domain: dom, event: 'STOP' }), conn.qemuMonitorEvents({ domain: dom, event: 'STOP' })];
      const lifecycle = [conn.domainEvents({ domain: dom }), conn.domainEvents({ domain: dom })];
      await Promise.all([...everything, ...stops, ...lifecycle].map((s) => s.ready));
      expect(conn.activeSubscriptions).toBe(6);
      expect(conn.activeEventRegistrations).toBe(4); // QEMU: all, STOP; domain: lifecycle, reboot
      await dom.qemuMonitorCommand({ execute: 'stop' });
      await dom.qemuMonitorCommand({ execute: 'cont' });
      for (const s of everything) expect(((await take(s, 2)) as QemuMonitorEvent[]).map((e) => e.event)).toEqual(['STOP', 'RESUME']);
      for (const s of stops) expect(((await take(s, 1)) as QemuMonitorEvent[]).map((e) => e.event)).toEqual(['STOP']);
      for (const s of lifecycle) {
        expect(await take(s, 1)).toEqual([{ kind: 'lifecycle', domain: { name: 'rd1', uuid: dom.uuid }, event: 'suspended', detail: 'paused' }]);
      }
      expect(conn.activeSubscriptions).toBe(0);
      expect(conn.activeEventRegistrations).toBe(0);
    });

    it('delivers reboot events from reset', async () => {
      const events = conn.domainEvents({ domain: dom, kinds: ['reboot'] });
      await events.ready;
      await dom.reset();
      const [e] = await take(events, 1);
      expect(e).toEqual({ kind: 'reboot', domain: { name: 'rd1', uuid: dom.uuid } });
    });

    it('gives each of 200 concurrent failing calls its own error code', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? conn.lookupDomain(`missing-${i}`) : dom.start())),
      );
      results.forEach((r, i) => {
        expect(r.status).toBe('rejected');
        const e = (r as PromiseRejectedResult).reason as LibvirtError;
        expect(e).toBeInstanceOf(LibvirtError);
        if (i % 2 === 0) {
          expect(e).toMatchObject({ code: 42, codeName: 'VIR_ERR_NO_DOMAIN', domainName: 'VIR_FROM_QEMU' });
          expect(e.message).toContain(`'missing-${i}'`);
        } else {
          expect(e).toMatchObject({ code: 55, codeName: 'VIR_ERR_OPERATION_INVALID', message: expect.stringMatching(/already running/) });
        }
      });
    });

    it('frees domain handles: counts return to zero on close', async () => {
      const c = await Connection.open(daemon.uri);
      const sub = c.domainEvents();
      await sub.ready;
      for (let i = 0; i < 20; i++) await c.lookupDomain('rd1');
      await c.listDomains();
      expect(c.openDomainHandles).toBe(21);
      expect(c.activeSubscriptions).toBe(1);
      await c.close();
      expect(c.openDomainHandles).toBe(0);
      expect(c.activeSubscriptions).toBe(0);
      expect(await c.isAlive()).toBe(false);
    });
  });

  it('reports a missing domain as VIR_ERR_NO_DOMAIN from the QEMU driver', async () => {
    const err = (await conn.lookupDomain('no-such-guest').catch((e: unknown) => e)) as LibvirtError;
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: 42, codeName: 'VIR_ERR_NO_DOMAIN', domain: 10, domainName: 'VIR_FROM_QEMU' });
    expect(err.message).toContain("no domain with matching name 'no-such-guest'");
    expect(err.hint).toBeTruthy();
  });

  it('creates a transient guest with a second QMP socket in qmpDir', async () => {
    const sock = `${daemon.qmpDir}/t2.sock`;
    const t = await conn.createXML(tinyGuestXml({ name: 'rd-transient', qmpSocket: sock }));
    const { existsSync } = await import('node:fs');
    expect(existsSync(sock)).toBe(true);
    expect(await t.messages()).toContain('tainted: custom configuration parameters specified');
    await t.destroy();
    await expect(conn.lookupDomain('rd-transient')).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
  });

  it('runs a tiny guest with tinyGuestXml\'s user-mode NIC, whose link QEMU can take down', async () => {
    const t = await conn.createXML(tinyGuestXml({ name: 'rd-nic', nic: { id: 'ua-nic0' } }));
    try {
      expect(await t.xml()).toMatch(/<interface type='user'>[\s\S]*<model type='e1000'\/>[\s\S]*<alias name='ua-nic0'\/>/);
      expect(await t.qemuMonitorCommand({ execute: 'set_link', arguments: { name: 'ua-nic0', up: false } })).toMatchObject({ return: {} });
      expect(await t.qemuMonitorCommand({ execute: 'set_link', arguments: { name: 'net9', up: false } })).toMatchObject({ error: { class: 'DeviceNotFound' } });
      const network = await t.qemuMonitorHmp('info network');
      expect(network).toMatch(/^ua-nic0: .*type=nic,model=e1000,/m);
      expect(network).toMatch(/hostua-nic0: .*type=user,/);
    } finally {
      await t.destroy();
    }
  });

  it('opens read-only connections that can read but not change', async () => {
    const ro = await Connection.open(daemon.uri, { readOnly: true });
    const d = await ro.lookupDomain('rd1');
    expect((await d.state()).state).toBe('shutoff');
    await expect(d.start()).rejects.toMatchObject({ codeName: 'VIR_ERR_OPERATION_DENIED' });
    await ro.close();
  });

  it('fails to open a socket that does not exist with a system error', async () => {
    const err = (await Connection.open(`qemu+unix:///session?socket=${daemon.base}/nope.sock`).catch((e: unknown) => e)) as LibvirtError;
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err.codeName).toBe('VIR_ERR_SYSTEM_ERROR');
    expect(err.message).toContain('nope.sock');
  });
});
