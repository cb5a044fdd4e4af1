/**
 * Lanes on a real private libvirtd: calls spread over several libvirt connections, never two in flight on
 * one (libvirt 9.0's keepalive trap), and a call stuck on a hung QEMU costs one lane, not the connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../src/hybrid/index.js';
import { Connection, LibvirtError, LibvirtTimeoutError } from '../../src/libvirt/index.js';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';
import { settlesBefore, waitFor } from '../harness/wait.js';
import { qemuPid } from '../harness/guest-pid.js';

let daemon: PrivateLibvirtd;

beforeAll(async () => {
  daemon = await startPrivateLibvirtd({ prefix: 'lvln' });
  const c = await Connection.open(daemon.uri);
  for (const name of ['ln-a', 'ln-b']) await c.createXML(tinyGuestXml({ name }));
  await c.close();
});

afterAll(async () => {
  await daemon?.stop();
});

describe('lanes', () => {
  it('spread concurrent calls and event registrations over several connections, never two calls on one', async () => {
    const conn = await Connection.open(daemon.uri, { lanes: 4 });
    try {
      const [a, b] = await Promise.all([conn.lookupDomain('ln-a'), conn.lookupDomain('ln-b')]);
      const work: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        work.push(a.qemuMonitorCommand({ execute: 'query-status' }), b.qemuMonitorCommand({ execute: 'query-status' }), conn.listDomains(), a.xml());
      }
      // Event streams opened and closed meanwhile: their registration RPCs share the primary lane's connection.
      for (let i = 0; i < 5; i++) {
        const s = conn.qemuMonitorEvents({ domain: i % 2 ? a : b, event: 'STOP' });
        work.push(s.ready.then(() => s.return()));
      }
      const results = await Promise.all(work);
      // Lanes open while calls wait (a worker and a connection each, slow on a loaded machine): keep calling until one has.
      await waitFor('a second lane', async () => {
        await Promise.all(Array.from({ length: 20 }, () => a.qemuMonitorCommand({ execute: 'query-status' })));
        return conn.openLanes > 1;
      }, { timeoutMs: 60_000 });
      expect(results).toHaveLength(165);
      expect(results[0]).toMatchObject({ return: { status: 'running' } });
      expect(conn.openLanes).toBeGreaterThan(1);
      expect(conn.openLanes).toBeLessThanOrEqual(4);
      // counted by the worker threads around every native call, event registrations included
      expect(conn.maxCallsInFlightPerLibvirtConnection).toBe(1);
      // domain handles from one lane were found again by UUID on the others
      expect(await a.state()).toEqual({ state: 'running', reason: 'booted' });
    } finally {
      await conn.close();
    }
  });

  it('lanes: 1 runs every call on one libvirt connection', async () => {
    const conn = await Connection.open(daemon.uri, { lanes: 1 });
    try {
      const a = await conn.lookupDomain('ln-a');
      await Promise.all(Array.from({ length: 30 }, () => a.qemuMonitorCommand({ execute: 'query-status' })));
      expect(conn.openLanes).toBe(1);
      expect(conn.maxCallsInFlightPerLibvirtConnection).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('refuses a lane count that is not 1…64, saying what a lane is', async () => {
    for (const lanes of [0, -1, 1.5, 65, Number.NaN]) {
      const err = await Connection.open(daemon.uri, { lanes }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).message).toMatch(/lanes must be an integer from 1 to 64/);
      expect((err as InvalidArgumentError).hint).toMatch(/one libvirt connection and one worker thread/);
    }
  });

  it('a guest whose QEMU is stopped costs one lane: the other guest goes on, the stuck call rejects typed, the Hypervisor stays open', async () => {
    const hv = await Hypervisor.connect(daemon.uri, { callTimeoutMs: 4000 });
    const pid = qemuPid(daemon, 'ln-a');
    try {
      const [a, b] = await Promise.all([hv.guest('ln-a'), hv.guest('ln-b')]);
      const [qa, qb] = await Promise.all([a.qmp({ via: 'passthrough' }), b.qmp({ via: 'passthrough' })]);
      // Both clients in use (their schema loaded) before the trouble starts.
      await Promise.all([qa.execute('query-status'), qb.execute('query-status')]);
      const retired: string[] = [];
      hv.on('lane-retired', (info) => retired.push(info.operation));
      process.kill(pid, 'SIGSTOP');
      let stuckSettled = false;
      const stuck = qa.execute('query-status').then(
        () => 'returned',
        (err: unknown) => err,
      );
      void stuck.finally(() => (stuckSettled = true));
      // The healthy guest's calls complete on other lanes while the stuck one still waits for its deadline.
      for (let i = 0; i < 10; i++) expect(await qb.execute('query-status')).toMatchObject({ status: 'running' });
      expect(stuckSettled).toBe(false);
      const err = await settlesBefore(stuck, 30_000, 'the stuck call');
      expect(err).toBeInstanceOf(Error);
      expect((err as Error & { cause?: unknown }).cause ?? err).toBeInstanceOf(LibvirtTimeoutError);
      expect(retired).toEqual(['invoke']);
      expect(hv.isOpen).toBe(true);
      expect(hv.connection.isOpen).toBe(true);
      expect(await qb.execute('query-status')).toMatchObject({ status: 'running' });
      process.kill(pid, 'SIGCONT');
      // libvirtd finishes the frozen monitor command once QEMU runs again; then the guest answers.
      let status: unknown;
      for (let i = 0; i < 50 && status === undefined; i++) {
        status = await qa.execute('query-status').catch(() => new Promise((r) => setTimeout(r, 200)).then(() => undefined));
      }
      expect(status).toMatchObject({ status: 'running' });
      expect(hv.connection.maxCallsInFlightPerLibvirtConnection).toBe(1);
    } finally {
      process.kill(pid, 'SIGCONT');
      await settlesBefore(hv.close(), 5_000, 'close()');
    }
  });

  it('a stuck call on the primary lane moves the event registrations to a new lane: streams yield a gap, then go on', async () => {
    const conn = await Connection.open(daemon.uri, { lanes: 1 });
    const pid = qemuPid(daemon, 'ln-a');
    try {
      const [a, b] = await Promise.all([conn.lookupDomain('ln-a'), conn.lookupDomain('ln-b')]);
      const stream = conn.domainEvents({ domain: b, kinds: ['lifecycle'] });
      await stream.ready;
      const it = stream[Symbol.asyncIterator]();
      process.kill(pid, 'SIGSTOP');
      const err = await a.qemuMonitorCommand({ execute: 'query-status' }, { timeoutMs: 2000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LibvirtTimeoutError);
      // the only lane was the primary: a new one took its place, the connection stays open
      const gap = await settlesBefore(it.next(), 30_000, 'the gap notice');
      expect(gap.value).toMatchObject({ kind: 'gap' });
      expect(conn.isOpen).toBe(true);
      await b.suspend();
      await b.resume();
      expect((await settlesBefore(it.next(), 30_000, 'an event')).value).toMatchObject({ kind: 'lifecycle', event: 'suspended', domain: { uuid: b.uuid } });
      expect((await settlesBefore(it.next(), 30_000, 'an event')).value).toMatchObject({ kind: 'lifecycle', event: 'resumed' });
      await stream.return();
      expect(conn.maxCallsInFlightPerLibvirtConnection).toBe(1);
    } finally {
      process.kill(pid, 'SIGCONT');
      await settlesBefore(conn.close(), 5_000, 'close()');
    }
  });

  it('close() with a call stuck on a hung guest returns at once: the call fails typed, nothing waits for its deadline', async () => {
    const conn = await Connection.open(daemon.uri);
    const pid = qemuPid(daemon, 'ln-a');
    try {
      const a = await conn.lookupDomain('ln-a');
      process.kill(pid, 'SIGSTOP');
      const stuck = a.qemuMonitorCommand({ execute: 'query-status' }).then(
        () => 'returned',
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 300)); // the call is in libvirtd, waiting for the frozen QEMU
      await settlesBefore(conn.close(), 5_000, 'close() with a stuck call'); // its deadline is 60 s
      const err = await settlesBefore(stuck, 5_000, 'the stuck call');
      expect(err).toBeInstanceOf(LibvirtError);
      expect((err as LibvirtError).isConnectionLost).toBe(true);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
