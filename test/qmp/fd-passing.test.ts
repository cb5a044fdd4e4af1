/** File descriptors passed with commands (SCM_RIGHTS) to a real QEMU: add-fd, blockdev-add on /dev/fdset/N, getfd. */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unixFdPassing } from '../../native/socket.js';
import { FdPassingError, QmpClient } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

let qemu: QemuInstance;
let dir: string;
let image: string;

beforeAll(async () => {
  qemu = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'side.sock')},server=on,wait=off`] });
  dir = mkdtempSync(join(tmpdir(), 'lq-fd-'));
  image = join(dir, 'disk.raw');
  writeFileSync(image, Buffer.alloc(1024 * 1024));
});
afterAll(async () => {
  await qemu?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('fd passing on a unix-socket monitor', () => {
  it('add-fd passes an open image; blockdev-add uses /dev/fdset/N; the node is listed, then removed', async () => {
    const client = await QmpClient.connect({ path: qemu.qmpPath }, { fdPassing: unixFdPassing });
    const fd = openSync(image, 'r+');
    try {
      expect(client.transport.capabilities.fdPassing).toBe(true);
      // commands before and after the one with the fd, in one burst: the fd must ride with add-fd only
      const [before, added, after] = await Promise.all([
        client.execute('query-status'),
        client.execute('add-fd', { 'fdset-id': 7, opaque: 'libqemu-test' }, { fds: [fd] }),
        client.execute('query-fdsets'),
      ]);
      expect(before).toMatchObject({ status: 'running' });
      expect(added).toMatchObject({ 'fdset-id': 7, fd: expect.any(Number) });
      expect(after).toEqual([{ 'fdset-id': 7, fds: [{ fd: (added as { fd: number }).fd, opaque: 'libqemu-test' }] }]);
      await client.execute('blockdev-add', { driver: 'raw', 'node-name': 'fdnode', file: { driver: 'file', filename: '/dev/fdset/7' } });
      const nodes = (await client.execute('query-named-block-nodes')) as { 'node-name': string; file: string }[];
      expect(nodes.map((n) => n['node-name'])).toContain('fdnode');
      await client.execute('blockdev-del', { 'node-name': 'fdnode' });
      await client.execute('remove-fd', { 'fdset-id': 7 });
      expect(await client.execute('query-fdsets')).toEqual([]);
    } finally {
      closeSync(fd);
      await client.close();
    }
  });

  it('getfd names a passed fd; closefd closes it', async () => {
    const client = await QmpClient.connect({ path: join(qemu.dir, 'side.sock') }, { fdPassing: unixFdPassing });
    const fd = openSync(image, 'r');
    try {
      expect(await client.execute('getfd', { fdname: 'img' }, { fds: [fd] })).toEqual({});
      expect(await client.execute('closefd', { fdname: 'img' })).toEqual({});
      // without an fd QEMU refuses getfd: the fd went with the command above, not later
      await expect(client.execute('getfd', { fdname: 'none' })).rejects.toMatchObject({ errorClass: 'GenericError' });
    } finally {
      closeSync(fd);
      await client.close();
    }
  });

  it('refuses fds, typed and before sending, on a connection that cannot pass them', async () => {
    const client = await QmpClient.connect({ path: qemu.qmpPath });
    const fd = openSync(image, 'r');
    try {
      expect(client.transport.capabilities.fdPassing).toBe(false);
      await expect(client.execute('add-fd', { 'fdset-id': 8 }, { fds: [fd] })).rejects.toBeInstanceOf(FdPassingError);
      await expect(client.execute('add-fd', { 'fdset-id': 8 }, { fds: [-1] })).rejects.toThrow(/fds must be an array/);
      expect(await client.execute('query-fdsets')).toEqual([]);
    } finally {
      closeSync(fd);
      await client.close();
    }
  });
});
