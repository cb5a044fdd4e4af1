/**
 * fd passing on the passthrough route (virDomainQemuMonitorCommandWithFiles) against a real private
 * libvirtd and a TCG guest: add-fd + blockdev-add on /dev/fdset/N over the local unix socket, the
 * fd-set ownership rule between two clients, and over qemu+tcp a typed refusal before anything is sent
 * (libvirt would drop the whole connection otherwise).
 */
import { closeSync, openSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, PolicyError, type Guest } from '../../src/hybrid/index.js';
import { FdPassingError } from '../../src/qmp/index.js';
import { type PrivateLibvirtd } from '../../src/testing/index.js';
import { startFdPassingGuest, type FdPassingGuest } from '../harness/fd-guest.js';

const name = `pfd${process.pid % 1000}`;
let lv: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;
let dir: string;
let image: string;

let fixture: FdPassingGuest | undefined;

beforeAll(async () => {
  fixture = await startFdPassingGuest({ prefix: 'pfd', name });
  ({ lv, hv, guest, dir, image } = fixture);
});
afterAll(async () => {
  await fixture?.close();
});

const nodeNames = async (q: Awaited<ReturnType<Guest['qmp']>>) => ((await q.execute('query-named-block-nodes')) as { 'node-name': string }[]).map((n) => n['node-name']);

describe('fd passing on the passthrough route (local unix socket)', () => {
  it('add-fd passes the fd; blockdev-add on /dev/fdset/N is listed; then blockdev-del and remove-fd', async () => {
    const q = await guest.qmp({ via: 'passthrough', validate: false, allow: ['blockdev-add', 'blockdev-del'] });
    const fd = openSync(image, 'r+');
    try {
      expect(q.route).toBe('passthrough');
      expect(q.transport.capabilities).toMatchObject({ fdPassing: true, maxFds: 1 });
      expect(await q.execute('add-fd', { 'fdset-id': 1000 }, { fds: [fd] })).toMatchObject({ 'fdset-id': 1000, fd: expect.any(Number) });
      closeSync(fd); // QEMU holds its own copy now
      await q.execute('blockdev-add', { driver: 'raw', 'node-name': 'ptfd', file: { driver: 'file', filename: '/dev/fdset/1000' } });
      expect(await nodeNames(q)).toContain('ptfd');
      await q.execute('blockdev-del', { 'node-name': 'ptfd' });
      expect(await nodeNames(q)).not.toContain('ptfd');
      await q.execute('remove-fd', { 'fdset-id': 1000 });
      expect(await q.execute('query-fdsets')).toEqual([]);
    } finally {
      try {
        closeSync(fd);
      } catch {
        // closed above
      }
      await q.close();
    }
  });

  it('a pipelined add-fd + blockdev-add + query stay in order while the policy looks at QEMU\'s fd sets', async () => {
    const q = await guest.qmp({ via: 'passthrough', validate: false, allow: ['blockdev-add', 'blockdev-del'] });
    const fd = openSync(image, 'r+');
    try {
      // not awaited one by one: the add-fd's fd-set check (a query-fdsets) must not let the others overtake it
      const [added, node, nodes] = await Promise.all([
        q.execute('add-fd', { 'fdset-id': 1003 }, { fds: [fd] }),
        q.execute('blockdev-add', { driver: 'raw', 'node-name': 'ptorder', file: { driver: 'file', filename: '/dev/fdset/1003' } }),
        q.execute('query-named-block-nodes') as Promise<{ 'node-name': string }[]>,
      ]);
      expect(added).toMatchObject({ 'fdset-id': 1003 });
      expect(node).toEqual({});
      expect(nodes.map((n) => n['node-name'])).toContain('ptorder');
      await Promise.all([q.execute('blockdev-del', { 'node-name': 'ptorder' }), q.execute('remove-fd', { 'fdset-id': 1003 })]);
      expect(await q.execute('query-fdsets')).toEqual([]);
    } finally {
      closeSync(fd);
      await q.close();
    }
  });

  it('getfd and closefd pass a named fd; two fds in one command are refused typed (libvirt takes one)', async () => {
    const q = await guest.qmp({ via: 'passthrough', validate: false });
    const fd = openSync(image, 'r');
    try {
      expect(await q.execute('getfd', { fdname: 'lqmine' }, { fds: [fd] })).toEqual({});
      expect(await q.execute('closefd', { fdname: 'lqmine' })).toEqual({});
      // QEMU's own answer: the name is gone, so the fd really was there before
      await expect(q.execute('closefd', { fdname: 'lqmine' }, { allowUnsafe: true })).rejects.toMatchObject({ errorClass: 'GenericError' });
      const two = await q.execute('getfd', { fdname: 'two' }, { fds: [fd, fd] }).catch((e: unknown) => e);
      expect(two).toBeInstanceOf(FdPassingError);
      expect((two as FdPassingError).message).toContain('at most 1');
      await expect(q.execute('getfd', { fdname: 'bad' }, { fds: [987654] })).rejects.toThrow(/987654 is not open/);
      expect(await q.execute('query-status')).toMatchObject({ status: 'running' });
    } finally {
      closeSync(fd);
      await q.close();
    }
  });

  it("refuses remove-fd (and add-fd) on an fd set another client created, saying whose sets are whose", async () => {
    const a = await guest.qmp({ via: 'passthrough', validate: false });
    const b = await guest.qmp({ via: 'passthrough', validate: false });
    // a set made behind both clients' backs, as libvirt (or another tool) would
    const direct = await hv.connection.lookupDomain(name);
    const fd = openSync(image, 'r');
    try {
      const outside = JSON.parse((await direct.qemuMonitorCommandWithFiles(JSON.stringify({ execute: 'add-fd', arguments: { 'fdset-id': 7 } }), [fd], 0)).result) as { return: unknown };
      expect(outside.return).toMatchObject({ 'fdset-id': 7 });
      await a.execute('add-fd', { 'fdset-id': 1001 }, { fds: [fd] });
      const refused = (await b.execute('remove-fd', { 'fdset-id': 1001 }).catch((e: unknown) => e)) as PolicyError;
      expect(refused).toBeInstanceOf(PolicyError);
      expect(refused.fdsets).toEqual({ caller: [], others: [7, 1001] });
      expect(refused.message).toContain('fd set 1001 was not created by this client');
      expect(refused.message).toContain('fd sets of libvirt or other clients: 7, 1001; yours: none');
      const intoForeign = (await b.execute('add-fd', { 'fdset-id': 7 }, { fds: [fd] }).catch((e: unknown) => e)) as PolicyError;
      expect(intoForeign).toBeInstanceOf(PolicyError);
      expect(intoForeign.message).toContain('fd set 7 exists and was not created by this client');
      await expect(a.execute('remove-fd', { 'fdset-id': 7 })).rejects.toThrow(/yours: 1001/);
      await expect(b.execute('add-fd', {}, { fds: [fd] })).rejects.toThrow(/fdset-id of your own/);
      // nothing was sent for the refusals: both sets are still there
      expect(((await b.execute('query-fdsets')) as { 'fdset-id': number }[]).map((s) => s['fdset-id']).sort((x, y) => x - y)).toEqual([7, 1001]);
      await a.execute('remove-fd', { 'fdset-id': 1001 });
      await b.execute('remove-fd', { 'fdset-id': 7 }, { allowUnsafe: true });
      expect(await b.execute('query-fdsets')).toEqual([]);
    } finally {
      closeSync(fd);
      await a.close();
      await b.close();
    }
  });
});

describe('fd passing on the passthrough route over qemu+tcp', () => {
  it('reports fdPassing false and refuses fds typed before sending; the connection stays up', async () => {
    const tcpHv = await Hypervisor.connect(lv.tcpUri!, { onTaint: () => undefined });
    const fd = openSync(image, 'r');
    try {
      const q = await (await tcpHv.guest(name)).qmp({ via: 'passthrough', validate: false });
      try {
        expect(q.transport.capabilities.fdPassing).toBe(false);
        const err = await q.execute('add-fd', { 'fdset-id': 1002 }, { fds: [fd] }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FdPassingError);
        expect((err as FdPassingError).message).toContain('local unix socket');
        expect((err as FdPassingError).hint).toContain("via: 'monitor'");
        // libvirt drops a qemu+tcp connection that is asked to carry fds: this one was never asked
        expect(await q.execute('query-status')).toMatchObject({ status: 'running' });
        expect(await q.execute('query-fdsets')).toEqual([]);
      } finally {
        await q.close();
      }
    } finally {
      closeSync(fd);
      await tcpHv.close();
    }
  });
});
