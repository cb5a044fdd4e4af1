/**
 * The passthrough proxy that serves on its own thread (PassthroughProxy, what `libqemu proxy --via
 * passthrough` runs), on a real private libvirtd and TCG guest: QMP through it, events, the ownership
 * policy, a stuck QEMU (deadline, close), libvirtd restarting under it, and bad input.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { GuestNotRunningError, Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { PassthroughProxy, ProxyError } from '../../src/proxy/index.js';
import { QmpClient, QmpCommandError } from '../../src/qmp/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { settlesBefore, waitFor } from '../harness/wait.js';
import { qemuPid } from '../harness/guest-pid.js';

const name = `ptt${process.pid % 1000}`;
let lv: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'ptt', tcp: true });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
  guest = await hv.createGuest(tinyGuestXml({ name }));
});

afterAll(async () => {
  await hv?.close();
  await lv?.stop();
});

describe('PassthroughProxy', () => {
  it('serves QMP through libvirt to several clients: real greeting, own ids, events, policy, private socket', async () => {
    const proxy = await PassthroughProxy.start(guest, { listen: join(lv.base, 'pt1', 'p.sock'), allow: ['device_del'] });
    const a = await QmpClient.connect({ path: proxy.path });
    const b = await QmpClient.connect({ path: proxy.path });
    try {
      expect(proxy.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
      expect(a.greeting.version.qemu).toEqual(proxy.greeting.version.qemu);
      expect(statSync(proxy.path).mode & 0o777).toBe(0o600);
      expect(statSync(join(lv.base, 'pt1')).mode & 0o777).toBe(0o700);
      // pipelined from two clients, each with its own ids
      const replies = await Promise.all([...Array(10).keys()].map((i) => (i % 2 ? a : b).execute('query-status')));
      for (const r of replies) expect(r).toMatchObject({ status: 'running' });
      expect(await a.execute('query-name')).toEqual({ name });
      // QEMU's own errors come back with QEMU's class
      await expect(a.execute('qom-get', { path: '/nope', property: 'x' })).rejects.toMatchObject({ errorClass: 'DeviceNotFound' });
      // the ownership policy: a libvirt-owned command is refused with the class that says so...
      await expect(a.execute('quit')).rejects.toMatchObject({ errorClass: 'LibqemuPolicyRefused' });
      await expect(guest.state()).resolves.toMatchObject({ state: 'running' });
      // ...unless opted in (`allow`): device_del then reaches QEMU, which answers for itself
      const err = await a.execute('device_del', { id: 'no-such-device' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpCommandError);
      expect((err as QmpCommandError).errorClass).not.toBe('LibqemuPolicyRefused');
      // events: libvirt's relay of QEMU's STOP and RESUME, to every client
      const seen = { a: [] as string[], b: [] as string[] };
      a.on('event', (e) => seen.a.push(e.event));
      b.on('event', (e) => seen.b.push(e.event));
      await guest.suspend();
      await guest.resume();
      await waitFor('STOP and RESUME at both clients', () => seen.a.includes('RESUME') && seen.b.includes('RESUME'), { timeoutMs: 10_000 });
      expect(seen.a).toEqual(expect.arrayContaining(['STOP', 'RESUME']));
      // the thread publishes its counters every 0.1 s: wait for a snapshot taken after the events
      await waitFor('the stats to be published', () => proxy.stats.commands >= 14 && proxy.stats.events >= 2 && proxy.clientCount === 2, { timeoutMs: 10_000 });
      expect(proxy.stats).toMatchObject({ clients: 2, accepted: 2, dropped: 0 });
    } finally {
      await a.close();
      await b.close();
      await proxy.close();
    }
    expect(existsSync(proxy.path)).toBe(false);
    await expect(proxy.done).resolves.toBe('closed');
  });

  it('a stuck QEMU: the call misses its deadline and is answered as such; after SIGCONT the proxy serves again; close() is prompt', async () => {
    const lines: string[] = [];
    const proxy = await PassthroughProxy.start(guest, { listen: join(lv.base, 'pt2', 'p.sock'), commandTimeoutMs: 2000, logger: { info: (m) => lines.push(m) } });
    const client = await QmpClient.connect({ path: proxy.path }, { timeoutMs: 0 });
    const pid = qemuPid(lv, name);
    try {
      expect(await client.execute('query-status')).toMatchObject({ status: 'running' });
      process.kill(pid, 'SIGSTOP');
      const t0 = performance.now();
      const err = await settlesBefore(client.execute('query-status').catch((e: unknown) => e), 20_000, 'the stuck call');
      expect(err).toBeInstanceOf(QmpCommandError);
      expect((err as QmpCommandError).desc).toMatch(/timed out|deadline|2000 ms/i);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(1900);
      process.kill(pid, 'SIGCONT');
      // the thread got a new libvirt connection; libvirtd finishes the frozen command, then the guest answers
      let status: unknown;
      for (let i = 0; i < 50 && status === undefined; i++) {
        status = await client.execute('query-status').catch(() => new Promise((r) => setTimeout(r, 200)).then(() => undefined));
      }
      expect(status).toMatchObject({ status: 'running' });
      expect(lines.some((l) => /a new libvirt connection/.test(l))).toBe(true);
      // close() while QEMU is stopped and a call is stuck: it does not wait for QEMU
      process.kill(pid, 'SIGSTOP');
      void client.execute('query-status').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      const c0 = performance.now();
      await settlesBefore(proxy.close(), 10_000, 'close()');
      expect(performance.now() - c0).toBeLessThan(8000);
    } finally {
      process.kill(pid, 'SIGCONT');
      await client.close();
      await proxy.close();
    }
    // the Hypervisor is untouched by all this
    expect(hv.isOpen).toBe(true);
    await waitFor('the guest to run again', async () => (await guest.state()).state === 'running', { timeoutMs: 20_000 });
  });

  it('libvirtd restarts under it: clients stay connected and are served again', async () => {
    const lines: string[] = [];
    const proxy = await PassthroughProxy.start(guest, { listen: join(lv.base, 'pt3', 'p.sock'), logger: { info: (m) => lines.push(m), warn: (m) => lines.push(m) } });
    const client = await QmpClient.connect({ path: proxy.path }, { timeoutMs: 60_000 });
    try {
      expect(await client.execute('query-status')).toMatchObject({ status: 'running' });
      await lv.restart();
      // a command sent now waits for the reconnection (or fails typed if it was in flight), then works
      let status: unknown;
      for (let i = 0; i < 60 && status === undefined; i++) {
        status = await client.execute('query-status').catch(() => new Promise((r) => setTimeout(r, 250)).then(() => undefined));
      }
      expect(status).toMatchObject({ status: 'running' });
      // and events still come through (the main thread's subscription was re-registered)
      const seen: string[] = [];
      client.on('event', (e) => seen.push(e.event));
      await guest.suspend();
      await guest.resume();
      await waitFor('RESUME after the restart', () => seen.includes('RESUME'), { timeoutMs: 10_000 });
      expect(lines.some((l) => /a new libvirt connection/.test(l))).toBe(true);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it('the Hypervisor closing under it: the proxy stops, its clients are disconnected, nothing hangs', async () => {
    const hv2 = await Hypervisor.connect(lv.uri, { onTaint: () => undefined });
    const proxy = await PassthroughProxy.start(await hv2.guest(name), { listen: join(lv.base, 'pt4', 'p.sock') });
    const client = await QmpClient.connect({ path: proxy.path }, { timeoutMs: 0 });
    expect(await client.execute('query-status')).toMatchObject({ status: 'running' });
    const closed = new Promise<void>((r) => client.on('runstate', (s) => s === 'closed' && r()));
    // a client busy with commands while it happens: each one settles
    const busy = (async () => {
      for (;;) await client.execute('query-status');
    })().catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 100));
    await settlesBefore(hv2.close(), 15_000, 'hv.close()');
    const reason = await settlesBefore(proxy.done, 15_000, 'the proxy to stop');
    expect(reason).toMatch(/closed|reached|connection/i);
    await settlesBefore(closed, 15_000, 'the client to be disconnected');
    expect(await settlesBefore(busy, 15_000, 'the busy client')).toBeInstanceOf(Error);
    expect(existsSync(proxy.path)).toBe(false);
    await client.close();
  });

  it('over qemu+tcp: serves QMP; fd passing is refused at start, saying why', async () => {
    const tcpHv = await Hypervisor.connect(lv.tcpUri!, { onTaint: () => undefined });
    try {
      const remoteGuest = await tcpHv.guest(name);
      const refused = await PassthroughProxy.start(remoteGuest, { listen: join(lv.base, 'pt5', 'fd.sock'), fdPassing: true }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ProxyError);
      expect((refused as ProxyError).message).toMatch(/file descriptors/);
      expect(existsSync(join(lv.base, 'pt5', 'fd.sock'))).toBe(false);
      const proxy = await PassthroughProxy.start(remoteGuest, { listen: join(lv.base, 'pt5', 'p.sock') });
      const client = await QmpClient.connect({ path: proxy.path });
      try {
        expect(await client.execute('query-status')).toMatchObject({ status: 'running' });
      } finally {
        await client.close();
        await proxy.close();
      }
    } finally {
      await tcpHv.close();
    }
  });

  it('refuses bad input with typed errors', async () => {
    await expect(PassthroughProxy.start({} as Guest, { listen: join(lv.base, 'x', 'p.sock') })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(PassthroughProxy.start(guest, { listen: join(lv.base, 'x', 'p.sock'), maxClients: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(PassthroughProxy.start(guest, { listen: join(lv.base, 'x', 'p.sock'), events: ['bad name!'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(PassthroughProxy.start(guest, { listen: join(lv.base, 'x', 'p.sock'), allow: 'everything' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(PassthroughProxy.start(guest, { listen: join(lv.base, 'x', 'p.sock'), describeRefusal: { module: '' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    // a refusal module that cannot be loaded: the start fails typed, saying so, and leaves nothing behind
    await expect(PassthroughProxy.start(guest, { listen: join(lv.base, 'x', 'p.sock'), describeRefusal: { module: 'file:///nonexistent/refusal.js' } })).rejects.toThrow(/could not start/);
    const stopped = await hv.defineGuest(tinyGuestXml({ name: `${name}s` }));
    try {
      await expect(PassthroughProxy.start(stopped, { listen: join(lv.base, 'x', 'p.sock') })).rejects.toBeInstanceOf(GuestNotRunningError);
    } finally {
      await stopped.undefine();
    }
    // nothing was left listening
    expect(existsSync(join(lv.base, 'x', 'p.sock'))).toBe(false);
  });
});
