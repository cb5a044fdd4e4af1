/** A proxy client passes fds with its command over the proxy's socket; the proxy forwards them to QEMU. */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unixFdPassing } from '../../native/socket.js';
import { QmpProxy } from '../../src/proxy/index.js';
import { QmpClient, QmpCommandError } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { waitForListener } from '../harness/wait.js';
import { fdsetBlockNodeRoundTrip } from '../harness/fd-block-node.js';

const repoRoot = join(import.meta.dirname, '..', '..');
let qemu: QemuInstance;
let dir: string;
let image: string;
let backend: QmpClient;
let proxy: QmpProxy;

beforeAll(async () => {
  qemu = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'side.sock')},server=on,wait=off`] });
  dir = mkdtempSync(join(tmpdir(), 'lq-fdp-'));
  image = join(dir, 'disk.raw');
  writeFileSync(image, Buffer.alloc(1024 * 1024));
  backend = await QmpClient.connect({ path: qemu.qmpPath }, { fdPassing: unixFdPassing, timeoutMs: 0 });
  proxy = await QmpProxy.start(backend, { listen: join(dir, 'p', 'p.sock'), fdPassing: true });
});
afterAll(async () => {
  await proxy?.close();
  await backend?.close();
  await qemu?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('fd passing through the proxy', () => {
  it('forwards an fd sent with add-fd; blockdev-add on /dev/fdset/N works; then removed', async () => {
    const client = await QmpClient.connect({ path: proxy.path }, { fdPassing: unixFdPassing });
    const other = await QmpClient.connect({ path: proxy.path });
    const fd = openSync(image, 'r+');
    try {
      await fdsetBlockNodeRoundTrip(client, other, fd, { fdsetId: 3, nodeName: 'viaproxy' });
      // without an fd, QEMU's own refusal comes back
      await expect(client.execute('getfd', { fdname: 'x' })).rejects.toBeInstanceOf(QmpCommandError);
    } finally {
      closeSync(fd);
      await client.close();
      await other.close();
    }
  });

  it('libqemu proxy --fd-passing (the CLI) forwards an fd sent with add-fd', async () => {
    const listen = join(dir, 'cli', 'p.sock');
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'libqemu.js'), '--socket', join(qemu.dir, 'side.sock'), 'proxy', '--fd-passing', '--listen', listen], { stdio: 'ignore' });
    const fd = openSync(image, 'r');
    try {
      await waitForListener(listen, child);
      const client = await QmpClient.connect({ path: listen }, { fdPassing: unixFdPassing });
      try {
        expect(await client.execute('add-fd', { 'fdset-id': 9 }, { fds: [fd] })).toMatchObject({ 'fdset-id': 9 });
        expect(await client.execute('query-fdsets')).toMatchObject([{ 'fdset-id': 9 }]);
        await client.execute('remove-fd', { 'fdset-id': 9 });
      } finally {
        await client.close();
      }
    } finally {
      closeSync(fd);
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  });
});
