/**
 * libqemu's Linux test guest: a Debian cloud kernel and an initramfs holding busybox and the QEMU guest
 * agent, built from Debian packages by scripts/build-linux-guest.sh (no root needed, cached by package
 * versions), and the domain XML that boots it on TCG with the agent channel, ACPI and a serial log.
 * It powers off on the ACPI power button, reboots and shuts down through qemu-ga, and can carry a small
 * scratch disk so fs freeze has a file system to freeze.
 */
import { spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, LibqemuError } from '../common/errors.js';
import { closingLines, openingLines, xmlEscape } from './guest-xml.js';

/** The built kernel + initramfs. */
export interface LinuxGuestImage {
  /** The cache directory holding both (world-readable: QEMU may run as another uid). */
  dir: string;
  kernel: string;
  initrd: string;
  /** The kernel command line the init expects (serial console on ttyS0). */
  cmdline: string;
  /** Debian package → version, for the kernel, busybox-static, qemu-guest-agent and qemu-ga's libraries. */
  packages: Record<string, string>;
  kernelRelease: string;
}

/** The build failed: packages missing, apt unable to download, no Debian tools. The message says which. */
export class LinuxGuestBuildError extends LibqemuError {}

export interface BuildLinuxGuestOptions {
  /** Cache root (default: $LIBQEMU_GUEST_CACHE, else /var/tmp/libqemu-<uid>/linux-guest). */
  cacheDir?: string;
  /** A cold build downloads ~28 MB and packs an initramfs (a few seconds); default 300 000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The line the guest writes to its serial console once qemu-ga runs. */
export const LINUX_GUEST_READY_LINE = 'libqemu-guest: agent started';

function buildScript(): string {
  // src/testing → scripts/, or dist/src/testing → scripts/ in the package
  for (const rel of ['../../scripts/build-linux-guest.sh', '../../../scripts/build-linux-guest.sh']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new LinuxGuestBuildError('scripts/build-linux-guest.sh is missing from this installation', { hint: 'reinstall libqemu, or run from a checkout of its repository' });
}

/**
 * Builds the guest (or finds it in the cache: then it costs one apt-cache call, ~0.5 s) and returns its
 * files. Fails with LinuxGuestBuildError saying what is missing; never falls back to anything else.
 */
export async function buildLinuxGuest(options: BuildLinuxGuestOptions = {}): Promise<LinuxGuestImage> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new InvalidArgumentError(`buildLinuxGuest: timeoutMs must be a positive integer, got ${String(options.timeoutMs)}`);
  if (options.cacheDir !== undefined && (typeof options.cacheDir !== 'string' || !options.cacheDir.startsWith('/'))) {
    throw new InvalidArgumentError(`buildLinuxGuest: cacheDir must be an absolute path, got ${JSON.stringify(options.cacheDir)}`);
  }
  options.signal?.throwIfAborted();
  const env = { ...process.env, ...(options.cacheDir ? { LIBQEMU_GUEST_CACHE: options.cacheDir } : {}) };
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('bash', [buildScript()], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const stop = (why: string) => {
      child.kill('SIGTERM');
      reject(new LinuxGuestBuildError(`building the Linux test guest ${why}`, { hint: 'a cold build downloads ~28 MB of Debian packages: raise timeoutMs on a slow mirror' }));
    };
    const timer = setTimeout(() => stop(`took longer than ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => stop('was aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => reject(new LinuxGuestBuildError(`cannot run bash for the guest build: ${e.message}`, { cause: e })));
    child.on('close', (c) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code: c, stdout: out, stderr: err });
    });
  });
  if (code !== 0) {
    const lines = stderr.trim().split('\n').filter((l) => l.startsWith('libqemu:'));
    const message = lines[0]?.replace(/^libqemu: /, '') ?? `scripts/build-linux-guest.sh exited with ${String(code)}: ${stderr.trim().slice(-500)}`;
    throw new LinuxGuestBuildError(message, { hint: lines[1]?.replace(/^libqemu: /, '') ?? 'run scripts/host-setup.sh as root, then try again' });
  }
  const dir = stdout.trim().split('\n').pop() ?? '';
  let manifest: { kernel: string; initrd: string; cmdline: string; packages: Record<string, string>; kernelRelease: string };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as typeof manifest;
  } catch (err) {
    throw new LinuxGuestBuildError(`the guest build printed ${JSON.stringify(dir)}, which holds no readable manifest.json`, { cause: err, hint: 'remove the cache directory and build again' });
  }
  return { dir, kernel: join(dir, manifest.kernel), initrd: join(dir, manifest.initrd), cmdline: manifest.cmdline, packages: manifest.packages, kernelRelease: manifest.kernelRelease };
}

export interface LinuxGuestXmlOptions {
  name: string;
  image: LinuxGuestImage;
  /** Serial console written to this file (QEMU's uid must be able to create it). */
  consoleLog: string;
  /** Default 256. */
  memoryMiB?: number;
  /** A second QMP monitor: -qmp unix:<qmpSocket>,server=on,wait=off (as tinyGuestXml). */
  qmpSocket?: string;
  /** A raw image attached as virtio-blk vda; the guest formats it (ext2) on first boot and mounts it. */
  scratchDisk?: string;
  /** A virtio NIC on QEMU's user network (the guest gives it 10.0.2.15/24), for interface queries. */
  nic?: boolean;
  uuid?: string;
}

const MAX_UNIX_PATH = 107;


function checkPath(what: string, p: unknown): asserts p is string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) throw new InvalidArgumentError(`linuxGuestXml: ${what} must be an absolute path, got ${JSON.stringify(p)}`);
}

/**
 * Domain XML for the Linux test guest: TCG, pc machine, `<features><acpi/>` (without it libvirt starts
 * QEMU with -no-acpi and the power button silently does nothing), the guest agent's virtio-serial channel,
 * the serial console in a file, and optionally a second QMP monitor, a scratch disk and a virtio NIC (the
 * kernel has no e1000 driver).
 */
export function linuxGuestXml(options: LinuxGuestXmlOptions): string {
  const { name, image, consoleLog, memoryMiB = 256, qmpSocket, scratchDisk, nic = false, uuid } = options;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,40}$/.test(name)) {
    throw new InvalidArgumentError(`linuxGuestXml: name must be 1-40 of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`, { hint: 'short names keep socket paths under 107 bytes' });
  }
  if (typeof image !== 'object' || image === null || typeof image.kernel !== 'string') throw new InvalidArgumentError('linuxGuestXml: image must come from buildLinuxGuest()');
  checkPath('image.kernel', image.kernel);
  checkPath('image.initrd', image.initrd);
  checkPath('consoleLog', consoleLog);
  if (scratchDisk !== undefined) checkPath('scratchDisk', scratchDisk);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 128) throw new InvalidArgumentError(`linuxGuestXml: memoryMiB must be an integer ≥ 128, got ${String(memoryMiB)}`, { hint: 'the kernel and initramfs need ~100 MiB' });
  if (qmpSocket !== undefined && (typeof qmpSocket !== 'string' || qmpSocket.length > MAX_UNIX_PATH || qmpSocket.includes(',') || !qmpSocket.startsWith('/'))) {
    throw new InvalidArgumentError(`linuxGuestXml: qmpSocket must be an absolute path ≤ ${MAX_UNIX_PATH} bytes without commas`, { hint: 'put it in PrivateLibvirtd.qmpDir' });
  }
  const lines = [
    ...openingLines({ name, uuid, memoryMiB, qmpSocket }),
    `    <kernel>${xmlEscape(image.kernel)}</kernel>`,
    `    <initrd>${xmlEscape(image.initrd)}</initrd>`,
    `    <cmdline>${xmlEscape(image.cmdline)}</cmdline>`,
    '  </os>',
    '  <features><acpi/></features>',
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    '    <emulator>/usr/bin/qemu-system-x86_64</emulator>',
    ...(scratchDisk
      ? [`    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${xmlEscape(scratchDisk)}'/><target dev='vda' bus='virtio'/></disk>`]
      : []),
    ...(nic ? ["    <interface type='user'><model type='virtio'/><rom enabled='no'/></interface>"] : []),
    `    <serial type='file'><source path='${xmlEscape(consoleLog)}'/><target port='0'/></serial>`,
    "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
    ...closingLines(qmpSocket),
  ];
  return lines.join('\n') + '\n';
}

export interface LinuxTestGuestOptions {
  name: string;
  /**
   * A directory for the console log and scratch disk, e.g. a PrivateLibvirtd's `base`; created if
   * missing and handed to `owner` so QEMU (uid 65534 under a root-started private libvirtd) can write.
   */
  dir: string;
  /** Who QEMU runs as: e.g. a PrivateLibvirtd (its `uid`); default: this process. */
  owner?: { uid: number; gid?: number };
  /** Attach a scratch disk of this size (MiB, 8–1024) so fs freeze has something to freeze. */
  scratchDiskMiB?: number;
  qmpSocket?: string;
  nic?: boolean;
  memoryMiB?: number;
  uuid?: string;
  /** A prebuilt image (default: buildLinuxGuest()). */
  image?: LinuxGuestImage;
  signal?: AbortSignal;
}

export interface LinuxTestGuest {
  xml: string;
  image: LinuxGuestImage;
  consoleLog: string;
  scratchDisk: string | undefined;
  /** The serial console so far ('' before the guest wrote anything). */
  console(): string;
}

/**
 * Everything needed to boot the Linux test guest under a (private) libvirtd: builds or reuses the image,
 * prepares the console log and scratch disk for QEMU's uid, and returns the domain XML.
 */
export async function linuxTestGuest(options: LinuxTestGuestOptions): Promise<LinuxTestGuest> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('linuxTestGuest expects an options object', { hint: "e.g. { name: 'lg1', dir: daemon.base, owner: daemon }" });
  const { name, dir, scratchDiskMiB, owner } = options;
  if (typeof dir !== 'string' || !dir.startsWith('/')) throw new InvalidArgumentError(`linuxTestGuest: dir must be an absolute path, got ${JSON.stringify(dir)}`);
  if (scratchDiskMiB !== undefined && (!Number.isInteger(scratchDiskMiB) || scratchDiskMiB < 8 || scratchDiskMiB > 1024)) {
    throw new InvalidArgumentError(`linuxTestGuest: scratchDiskMiB must be an integer from 8 to 1024, got ${String(scratchDiskMiB)}`);
  }
  if (owner !== undefined && (typeof owner !== 'object' || owner === null || !Number.isInteger(owner.uid))) {
    throw new InvalidArgumentError('linuxTestGuest: owner must be { uid, gid? }', { hint: 'pass the PrivateLibvirtd itself' });
  }
  const image = options.image ?? (await buildLinuxGuest(options.signal ? { signal: options.signal } : {}));
  const guestDir = join(dir, 'linux-guests', String(name));
  const consoleLog = join(guestDir, 'console.log');
  const scratchDisk = scratchDiskMiB === undefined ? undefined : join(guestDir, 'scratch.img');
  const xml = linuxGuestXml({
    name,
    image,
    consoleLog,
    ...(scratchDisk ? { scratchDisk } : {}),
    ...(options.qmpSocket !== undefined ? { qmpSocket: options.qmpSocket } : {}),
    ...(options.nic !== undefined ? { nic: options.nic } : {}),
    ...(options.memoryMiB !== undefined ? { memoryMiB: options.memoryMiB } : {}),
    ...(options.uuid !== undefined ? { uuid: options.uuid } : {}),
  });
  mkdirSync(guestDir, { recursive: true, mode: 0o700 });
  if (scratchDisk && !existsSync(scratchDisk)) {
    // sparse and unformatted: the guest runs mke2fs on first boot (no host tools needed)
    const fd = openSync(scratchDisk, 'w', 0o600);
    try {
      ftruncateSync(fd, scratchDiskMiB! * 1024 * 1024);
    } finally {
      closeSync(fd);
    }
  }
  const uid = owner?.uid;
  if (uid !== undefined && uid !== process.getuid?.()) {
    const gid = owner?.gid ?? uid;
    for (let d = guestDir; d.length > dir.length; d = join(d, '..')) chownSync(d, uid, gid);
    if (scratchDisk) chownSync(scratchDisk, uid, gid);
  }
  return {
    xml,
    image,
    consoleLog,
    scratchDisk,
    console: () => {
      try {
        return readFileSync(consoleLog, 'utf8');
      } catch {
        return '';
      }
    },
  };
}
