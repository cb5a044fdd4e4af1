/** Fast lifecycle and error cases against libvirt's in-process test:///default driver (no daemon, no QEMU). */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, Domain, LibvirtError } from '../../src/libvirt/index.js';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { tinyGuestXml } from '../../src/testing/private-libvirtd.js';

let conn: Connection;
beforeAll(async () => {
  conn = await Connection.open('test:///default');
});
afterAll(async () => {
  await conn?.close();
});

async function take<T>(stream: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for await (const e of stream) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

describe('Connection on test:///default', () => {
  it('reports uri, hostname, versions and liveness', async () => {
    expect(conn.uri).toBe('test:///default');
    expect(await conn.hostname()).toMatch(/\S/);
    expect(await conn.libVersion()).toEqual({ major: 9, minor: 0, micro: 0 });
    const hv = await conn.hypervisorVersion();
    expect(hv.major * 1e6 + hv.minor * 1e3 + hv.micro).toBeGreaterThan(0);
    expect(await conn.isAlive()).toBe(true);
  });

  it('lists, looks up by name, UUID and id', async () => {
    const all = await conn.listDomains();
    const test = all.find((d) => d.name === 'test');
    expect(test).toBeInstanceOf(Domain);
    expect(test!.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await conn.lookupDomain(test!.uuid)).name).toBe('test');
    const id = await test!.id();
    expect(id).toBeTypeOf('number');
    expect((await conn.lookupDomainById(id!)).uuid).toBe(test!.uuid);
    expect((await conn.listDomains({ active: false, inactive: true })).map((d) => d.name)).not.toContain('test');
  });

  it('runs a defined domain through its lifecycle, with states as names', async () => {
    const dom = await conn.defineXML(tinyGuestXml({ name: 'td-life' }));
    expect(await dom.state()).toEqual({ state: 'shutoff', reason: 'unknown' });
    expect(await dom.id()).toBeUndefined();
    expect(await dom.isPersistent()).toBe(true);
    await dom.start();
    expect((await dom.state()).state).toBe('running');
    await dom.suspend();
    expect(await dom.state()).toEqual({ state: 'paused', reason: 'user' });
    await dom.resume();
    expect(await dom.state()).toEqual({ state: 'running', reason: 'unpaused' });
    await dom.reboot();
    await dom.reset();
    const info = await dom.info();
    expect(info).toMatchObject({ state: 'running', maxMemKiB: 65536, vcpus: 1 });
    expect(await dom.xml()).toContain('<name>td-life</name>');
    expect(await dom.xml({ inactive: true })).toContain('<name>td-life</name>');
    await dom.destroy();
    expect(await dom.state()).toEqual({ state: 'shutoff', reason: 'destroyed' });
    await dom.undefine();
    await expect(conn.lookupDomain('td-life')).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN' });
  });

  it('creates a transient domain that disappears on destroy', async () => {
    const dom = await conn.createXML(tinyGuestXml({ name: 'td-transient' }));
    expect(await dom.isPersistent()).toBe(false);
    await dom.destroy();
    await expect(dom.state()).rejects.toBeInstanceOf(LibvirtError);
  });

  it('delivers lifecycle events and deregisters them when the consumer stops', async () => {
    const dom = await conn.lookupDomain('test');
    const events = conn.domainEvents({ domain: dom, kinds: ['lifecycle'] });
    await events.ready;
    expect(conn.activeSubscriptions).toBe(1);
    await dom.suspend();
    await dom.resume();
    const got = [];
    for await (const e of events) {
      got.push(e);
      if (got.length === 2) break;
    }
    expect(got).toEqual([
      { kind: 'lifecycle', domain: { name: 'test', uuid: dom.uuid }, event: 'suspended', detail: 'paused' },
      { kind: 'lifecycle', domain: { name: 'test', uuid: dom.uuid }, event: 'resumed', detail: 'unpaused' },
    ]);
    expect(conn.activeSubscriptions).toBe(0);
  });

  it('serves identical subscriptions on one connection from one libvirt registration each', async () => {
    const dom = await conn.lookupDomain('test');
    const twinA = conn.domainEvents({ domain: dom });
    const twinB = conn.domainEvents({ domain: dom });
    const lifecycleOnly = conn.domainEvents({ domain: dom, kinds: ['lifecycle'] });
    const anyA = conn.domainEvents();
    const anyB = conn.domainEvents();
    await Promise.all([twinA.ready, twinB.ready, lifecycleOnly.ready, anyA.ready, anyB.ready]);
    expect(conn.activeSubscriptions).toBe(5);
    expect(conn.activeEventRegistrations).toBe(4); // lifecycle + reboot, for `test` and for every domain
    await dom.suspend();
    await dom.resume();
    const suspendedResumed = [
      { kind: 'lifecycle', domain: { name: 'test', uuid: dom.uuid }, event: 'suspended', detail: 'paused' },
      { kind: 'lifecycle', domain: { name: 'test', uuid: dom.uuid }, event: 'resumed', detail: 'unpaused' },
    ];
    for (const s of [twinA, twinB, anyA]) expect(await take(s, 2)).toEqual(suspendedResumed); // each leaves
    expect(conn.activeSubscriptions).toBe(2);
    expect(conn.activeEventRegistrations).toBe(3); // the reboot one for `test` went with the twins
    await dom.suspend();
    await dom.resume();
    // The remaining ones still get their own copy of every event, from before and after the others left.
    expect(await take(lifecycleOnly, 4)).toEqual([...suspendedResumed, ...suspendedResumed]);
    expect(await take(anyB, 4)).toEqual([...suspendedResumed, ...suspendedResumed]);
    expect(conn.activeSubscriptions).toBe(0);
    expect(conn.activeEventRegistrations).toBe(0);
  });

  it('subscribes again right after an identical subscription stopped (its deregistration runs first)', async () => {
    const dom = await conn.lookupDomain('test');
    const first = conn.domainEvents({ domain: dom });
    await first.ready;
    await first.return();
    const second = conn.domainEvents({ domain: dom, kinds: ['reboot'] });
    // libvirt would refuse it ("event callback already tracked") were the first one's reboot callback still there.
    await expect(second.ready).resolves.toBeUndefined();
    expect(conn.activeEventRegistrations).toBe(1);
    await second.return();
    expect(conn.activeEventRegistrations).toBe(0);
  });

  it('fails with typed libvirt errors', async () => {
    const err = await conn.lookupDomain('missing-domain').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: 42, codeName: 'VIR_ERR_NO_DOMAIN', domain: 12, domainName: 'VIR_FROM_TEST', operation: 'virDomainLookupByName' });
    expect((err as LibvirtError).hint).toMatch(/listDomains/);
    const running = await conn.lookupDomain('test');
    // The test driver reports state conflicts as internal errors (the QEMU driver: VIR_ERR_OPERATION_INVALID).
    await expect(running.start()).rejects.toMatchObject({ codeName: 'VIR_ERR_INTERNAL_ERROR', operation: 'virDomainCreateWithFlags' });
    await expect(running.qemuMonitorCommand({ execute: 'query-status' })).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    await expect(conn.defineXML('<domain>')).rejects.toBeInstanceOf(LibvirtError);
  });

  it('gives each of 200 concurrent failing calls its own error', async () => {
    const dom = await conn.lookupDomain('test');
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? conn.lookupDomain(`missing-${i}`) : dom.resume())),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as LibvirtError;
      if (i % 2 === 0) expect(e).toMatchObject({ codeName: 'VIR_ERR_NO_DOMAIN', operation: 'virDomainLookupByName' });
      else expect(e).toMatchObject({ codeName: 'VIR_ERR_INTERNAL_ERROR', operation: 'virDomainResume', message: expect.stringMatching(/not paused/) });
    });
  });

  it('validates arguments before calling libvirt', async () => {
    await expect(Connection.open('')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(Connection.open('test:///default', { callTimeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(conn.lookupDomain('')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(conn.lookupDomainById(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(conn.defineXML('not xml')).rejects.toBeInstanceOf(InvalidArgumentError);
    const dom = await conn.lookupDomain('test');
    await expect(dom.qemuMonitorCommand('query-status')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(dom.qemuAgentCommand('{}', 1.5)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => conn.domainEvents({ kinds: ['nope' as 'reboot'] })).toThrow(InvalidArgumentError);
  });

  it('releases domain handles on close and rejects calls afterwards', async () => {
    const c = await Connection.open('test:///default');
    const doms = await c.listDomains();
    await c.lookupDomain('test');
    expect(c.openDomainHandles).toBe(doms.length + 1);
    await c.close();
    expect(c.openDomainHandles).toBe(0);
    await expect(doms[0]!.state()).rejects.toMatchObject({ codeName: 'VIR_ERR_INVALID_CONN' });
    await c.close(); // idempotent
  });

  it('releases handles of garbage-collected domains', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const c = await Connection.open('test:///default');
    for (let i = 0; i < 50; i++) await c.lookupDomain('test');
    expect(c.openDomainHandles).toBe(50);
    for (let i = 0; i < 20 && c.openDomainHandles > 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(c.openDomainHandles).toBe(0);
    await c.close();
  });
});

describe('argument validation of subscriptions and calls', () => {
  it('rejects bad bufferSize, overflow and per-call timeouts', async () => {
    expect(() => conn.domainEvents({ bufferSize: 0 })).toThrow(InvalidArgumentError);
    expect(() => conn.qemuMonitorEvents({ overflow: 'sometimes' as 'error' })).toThrow(InvalidArgumentError);
    expect(() => conn.qemuMonitorEvents({ event: '' })).toThrow(InvalidArgumentError);
    const dom = await conn.lookupDomain('test');
    await expect(dom.state({ timeoutMs: -5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(conn.activeSubscriptions).toBe(0);
  });

  it('ends a subscription with the driver\'s error when libvirt refuses it', async () => {
    const events = conn.qemuMonitorEvents(); // test:///default has no QEMU monitor events
    await expect(events.ready).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    await expect(events.next()).rejects.toMatchObject({ codeName: 'VIR_ERR_NO_SUPPORT' });
    expect(conn.activeSubscriptions).toBe(0);
  });
});
