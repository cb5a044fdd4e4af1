/**
 * The Linux test guest's build (cached by versions, failing with a clear typed error) and its domain XML.
 */
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { LinuxGuestBuildError, buildLinuxGuest, linuxGuestXml } from '../../src/testing/index.js';
import { guestImage } from './helpers.js';

describe('buildLinuxGuest', () => {
  it('builds (or finds) the kernel and initramfs, world-readable, with the versions they came from; a second call reuses them', async () => {
    const image = await guestImage();
    expect(image.kernel).toBe(join(image.dir, 'vmlinuz'));
    for (const f of [image.kernel, image.initrd]) {
      const st = statSync(f);
      expect(st.size).toBeGreaterThan(1_000_000);
      expect(st.mode & 0o004).toBe(0o004); // QEMU may run as another uid (65534)
    }
    expect(Object.keys(image.packages)).toEqual(expect.arrayContaining(['busybox-static', 'qemu-guest-agent', 'libc6', 'libglib2.0-0']));
    expect(Object.keys(image.packages).some((p) => p.startsWith('linux-image-'))).toBe(true);
    expect(image.cmdline).toContain('console=ttyS0');
    const again = await buildLinuxGuest();
    expect(again.dir).toBe(image.dir);
    expect(statSync(again.initrd).mtimeMs).toBe(statSync(image.initrd).mtimeMs); // not rebuilt
  });

  it('fails with LinuxGuestBuildError saying what is wrong, e.g. a cache directory that is not ours', async () => {
    const foreign = mkdtempSync(join(tmpdir(), 'lg-foreign-'));
    try {
      if (process.getuid?.() === 0) chownSync(foreign, 65534, 65534);
      else return; // only root can give a directory away; the mapping is the same for every failure
      const err = await buildLinuxGuest({ cacheDir: foreign }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LinuxGuestBuildError);
      expect((err as LinuxGuestBuildError).message).toContain(`${foreign} is not a directory owned by`);
      expect((err as LinuxGuestBuildError).hint).toMatch(/LIBQEMU_GUEST_CACHE/);
    } finally {
      rmSync(foreign, { recursive: true, force: true });
    }
  });

  it('validates its options', async () => {
    await expect(buildLinuxGuest({ cacheDir: 'relative' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(buildLinuxGuest({ timeoutMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('linuxGuestXml', () => {
  const image = { dir: '/c', kernel: '/c/vmlinuz', initrd: '/c/initrd.img', cmdline: 'console=ttyS0 quiet', packages: {}, kernelRelease: 'x' };

  it('declares ACPI (else libvirt adds -no-acpi), the agent channel, the serial log, and the optional disk, NIC and monitor', () => {
    const xml = linuxGuestXml({ name: 'lg', image, consoleLog: '/run/x/console.log', scratchDisk: '/run/x/s.img', nic: true, qmpSocket: '/run/q/lg.sock' });
    expect(xml).toContain('<features><acpi/></features>');
    expect(xml).toContain("<target type='virtio' name='org.qemu.guest_agent.0'/>");
    expect(xml).toContain("<serial type='file'><source path='/run/x/console.log'/>");
    expect(xml).toContain("<source file='/run/x/s.img'/><target dev='vda' bus='virtio'/>");
    expect(xml).toContain("<model type='virtio'/>"); // the cloud kernel has no e1000 driver
    expect(xml).toContain("<qemu:arg value='unix:/run/q/lg.sock,server=on,wait=off'/>");
    expect(xml).toContain("<memory unit='MiB'>256</memory>");
    expect(xml).toContain("<domain type='qemu'");
    const plain = linuxGuestXml({ name: 'lg', image, consoleLog: '/run/x/console.log' });
    expect(plain).not.toContain('<disk');
    expect(plain).not.toContain('<interface');
    expect(plain).not.toContain('qemu:commandline');
  });

  it('rejects bad names, relative paths and too little memory', () => {
    expect(() => linuxGuestXml({ name: 'bad name', image, consoleLog: '/x' })).toThrow(InvalidArgumentError);
    expect(() => linuxGuestXml({ name: 'ok', image, consoleLog: 'rel.log' })).toThrow(/absolute/);
    expect(() => linuxGuestXml({ name: 'ok', image, consoleLog: '/x', memoryMiB: 64 })).toThrow(/memoryMiB/);
    expect(() => linuxGuestXml({ name: 'ok', image, consoleLog: '/x', qmpSocket: '/a,b' })).toThrow(/qmpSocket/);
  });
});
