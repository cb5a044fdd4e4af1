/**
 * fd passing through the proxy on the passthrough route: a proxy client sends an fd with add-fd over
 * the proxy's socket (SCM_RIGHTS); the proxy hands it to libvirt (virDomainQemuMonitorCommandWithFiles),
 * in-process and from the CLI (`libqemu proxy --via passthrough --fd-passing`). Over qemu+tcp the proxy
 * refuses fdPassing at start, saying why.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unixFdPassing } from '../../native/socket.js';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { ProxyError, QmpProxy } from '../../src/proxy/index.js';
import { QmpClient, QmpCommandError } from '../../src/qmp/index.js';
import { type PrivateLibvirtd } from '../../src/testing/index.js';
import { waitForListener } from '../harness/wait.js';
import { startFdPassingGuest, type FdPassingGuest } from '../harness/fd-guest.js';
import { fdsetBlockNodeRoundTrip } from '../harness/fd-block-node.js';

const repoRoot = join(import.meta.dirname, '..', '..');
const name = `ppfd${process.pid % 1000}`;
let lv: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;
let dir: string;
let image: string;

let fixture: FdPassingGuest | undefined;

beforeAll(async () => {
  fixture = await startFdPassingGuest({ prefix: 'ppfd', name });
  ({ lv, hv, guest, dir, image } = fixture);
});
afterAll(async () => {
  await fixture?.close();
});

describe('fd passing through the proxy on the passthrough route', () => {
  it('forwards an fd sent with add-fd to libvirt; blockdev-add on /dev/fdset/N is listed; then removed', async () => {
    const backend = await guest.qmp({ via: 'passthrough', validate: false, timeoutMs: 0, allow: ['blockdev-add', 'blockdev-del'] });
    const proxy = await QmpProxy.start(backend, { listen: join(dir, 'p', 'p.sock'), fdPassing: true });
    const client = await QmpClient.connect({ path: proxy.path }, { fdPassing: unixFdPassing });
    const other = await QmpClient.connect({ path: proxy.path });
    const fd = openSync(image, 'r+');
    try {
      expect(backend.route).toBe('passthrough');
      await fdsetBlockNodeRoundTrip(client, other, fd, { fdsetId: 1010, nodeName: 'viapt' });
      // each proxy client owns only the fd sets it created: one it did not create stays refused
      await expect(other.execute('remove-fd', { 'fdset-id': 3 })).rejects.toMatchObject({ errorClass: 'LibqemuPolicyRefused' });
      // without an fd, QEMU's own refusal comes back
      await expect(client.execute('getfd', { fdname: 'x' })).rejects.toBeInstanceOf(QmpCommandError);
    } finally {
      closeSync(fd);
      await client.close();
      await other.close();
      await proxy.close();
      await backend.close();
    }
  });

  it('libqemu proxy --via passthrough --fd-passing (the CLI) forwards an fd sent with add-fd', async () => {
    const listen = join(dir, 'cli', 'p.sock');
    const args = [join(repoRoot, 'bin', 'libqemu.js'), '-c', lv.uri, '-d', name, '--via', 'passthrough', 'proxy', '--fd-passing', '--listen', listen];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const fd = openSync(image, 'r');
    try {
      await waitForListener(listen, child);
      const client = await QmpClient.connect({ path: listen }, { fdPassing: unixFdPassing });
      try {
        expect(await client.execute('add-fd', { 'fdset-id': 1011 }, { fds: [fd] })).toMatchObject({ 'fdset-id': 1011 });
        expect(await client.execute('query-fdsets')).toMatchObject([{ 'fdset-id': 1011 }]);
        await client.execute('remove-fd', { 'fdset-id': 1011 });
        expect(await client.execute('query-fdsets')).toEqual([]);
      } finally {
        await client.close();
      }
    } finally {
      closeSync(fd);
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  });

  it('over qemu+tcp the proxy refuses fdPassing at start, saying why and what to use', async () => {
    const tcpHv = await Hypervisor.connect(lv.tcpUri!, { onTaint: () => undefined });
    try {
      const backend = await (await tcpHv.guest(name)).qmp({ via: 'passthrough', validate: false });
      try {
        const err = await QmpProxy.start(backend, { listen: join(dir, 't', 'p.sock'), fdPassing: true }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ProxyError);
        expect((err as ProxyError).message).toContain('cannot pass file descriptors');
        expect((err as ProxyError).hint).toContain("via: 'monitor'");
        expect(existsSync(join(dir, 't', 'p.sock'))).toBe(false);
        // without fd passing the same backend serves
        const proxy = await QmpProxy.start(backend, { listen: join(dir, 't', 'p.sock') });
        await proxy.close();
      } finally {
        await backend.close();
      }
    } finally {
      await tcpHv.close();
    }
  });
});
