/**
 * The guest's shared second monitor (guest.qmp() on the monitor route, several clients on one socket):
 * an oversized command is refused typed without holding up the others; fds pass with commands.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { MessageTooLargeError } from '../../src/qmp/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';

let lv: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;
let dir: string;

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'gmw' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
  guest = await hv.createGuest(tinyGuestXml({ name: `gmw${process.pid % 1000}`, qmpSocket: join(lv.qmpDir, `gmw${process.pid % 1000}.sock`) }), { qmpSocket: true });
  dir = mkdtempSync(join(tmpdir(), 'lq-gmw-'));
});
afterAll(async () => {
  await hv?.close();
  await lv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the shared second monitor', () => {
  it('hands a relay (executeTo) the reply\'s value as QEMU wrote it, with the hub\'s id rewrite, beside parsed callers', async () => {
    const a = await guest.qmp({ via: 'monitor', validate: false });
    const b = await guest.qmp({ via: 'monitor', validate: false });
    try {
      const texts: string[] = [];
      const values: unknown[] = [];
      const settled = new Promise<void>((resolve, reject) =>
        a.executeTo('query-status', undefined, {}, {
          resolve: (v) => (values.push(v), resolve()),
          reject,
          resolveText: (t) => (texts.push(t), resolve()),
        }),
      );
      const parsed = b.execute('query-status');
      await settled;
      expect(values).toEqual([]);
      expect(texts).toEqual(['{"status": "running", "singlestep": false, "running": true}']);
      expect(JSON.parse(texts[0]!)).toEqual(await parsed);
      expect([a.pendingCount, b.pendingCount]).toEqual([0, 0]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a 12 MiB command typed while another caller on the same monitor is answered', async () => {
    const a = await guest.qmp({ via: 'monitor', validate: false });
    const b = await guest.qmp({ via: 'monitor', validate: false });
    try {
      const big = a.execute('qom-list-types', { implements: 'x'.repeat(12 * 1024 * 1024) });
      const other = b.execute('query-status');
      await expect(big).rejects.toBeInstanceOf(MessageTooLargeError);
      await expect(big).rejects.toMatchObject({ direction: 'outbound' });
      expect(await other).toMatchObject({ status: 'running' });
      expect(await a.execute('query-status')).toMatchObject({ status: 'running' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('passes fds: getfd, and add-fd + blockdev-add on /dev/fdset/N (its own fd set: no opt-in), listed then removed', async () => {
    const image = join(dir, 'disk.raw');
    writeFileSync(image, Buffer.alloc(1024 * 1024));
    const q = await guest.qmp({ via: 'monitor', validate: false, allow: ['blockdev-add', 'blockdev-del'] });
    const fd = openSync(image, 'r+');
    try {
      expect(q.transport.capabilities.fdPassing).toBe(true);
      expect(await q.execute('getfd', { fdname: 'mine' }, { fds: [fd] })).toEqual({});
      expect(await q.execute('closefd', { fdname: 'mine' })).toEqual({});
      const added = (await q.execute('add-fd', { 'fdset-id': 42 }, { fds: [fd] })) as { 'fdset-id': number };
      expect(added['fdset-id']).toBe(42);
      await q.execute('blockdev-add', { driver: 'raw', 'node-name': 'lqfd', file: { driver: 'file', filename: '/dev/fdset/42' } });
      const nodes = (await q.execute('query-named-block-nodes')) as { 'node-name': string }[];
      expect(nodes.map((n) => n['node-name'])).toContain('lqfd');
      await q.execute('blockdev-del', { 'node-name': 'lqfd' });
      await q.execute('remove-fd', { 'fdset-id': 42 });
    } finally {
      closeSync(fd);
      await q.close();
    }
  });
});
