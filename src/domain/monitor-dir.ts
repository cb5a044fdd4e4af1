import { createHash } from 'node:crypto';
import { promises as fs, readFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import { MonitorDirError } from './errors.js';

/**
 * Where second-monitor sockets live, and who may use them. QEMU creates the socket (as QEMU's uid),
 * so the directory must be writable by that uid and private (0700): on a root-run private session
 * daemon QEMU runs as uid 65534 and the directory belongs to 65534; root can still connect.
 */

export interface QemuUser {
  uid: number;
  gid: number;
}

function passwdEntry(name: string): QemuUser | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , uid, gid] = line.split(':');
      if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: fall through
  }
  return undefined;
}

/**
 * The uid QEMU runs as for a local URI: a session daemon's own uid (the owner of its socket when the
 * URI names one, e.g. libqemu/testing's private daemon), the process's uid for an implicit session,
 * and `libvirt-qemu`/`qemu` (else root) for the system daemon.
 */
export async function qemuUserFor(uri: string): Promise<QemuUser> {
  const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return self;
  }
  const socket = url.searchParams.get('socket');
  if (url.pathname === '/session' || url.pathname === '/embed') {
    if (socket) {
      try {
        const st = await fs.stat(socket);
        return { uid: st.uid, gid: st.gid };
      } catch {
        return self;
      }
    }
    return self;
  }
  if (url.pathname === '/system') return passwdEntry('libvirt-qemu') ?? passwdEntry('qemu') ?? { uid: 0, gid: 0 };
  return self;
}

/** libqemu's own default directory for one hypervisor's monitor sockets (short: sun_path is 108 bytes). */
export function defaultMonitorDir(uri: string, qemuUid: number): string {
  const tag = createHash('sha256').update(uri).digest('hex').slice(0, 8);
  return join(tmpdir(), `libqemu-qmp-${qemuUid}-${tag}`);
}

/**
 * Directories ensureMonitorDir created in this process (libqemu's own, `fix`), so that libqemu may
 * remove them again when they are no longer needed (see removeCreatedMonitorDir). Every caller goes
 * through ensureMonitorDir, the facade as well as the migration's destination directory.
 */
const createdDirs = new Set<string>();

/** True if ensureMonitorDir created `dir` in this process (and it was not removed since). */
export function createdInThisProcess(dir: string): boolean {
  return createdDirs.has(resolve(dir));
}

/**
 * Removes `dir` if ensureMonitorDir created it in this process and it is empty (rmdir: a socket or any
 * other file in it keeps it). Anything else is left alone. Resolves to whether it was removed.
 */
export async function removeCreatedMonitorDir(dir: string): Promise<boolean> {
  const path = resolve(dir);
  if (!createdDirs.has(path)) return false;
  try {
    await fs.rmdir(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') createdDirs.delete(path);
    return false; // ENOTEMPTY/EEXIST: in use again; anything else: not ours to force
  }
  createdDirs.delete(path);
  return true;
}

/**
 * Makes `dir` a private (0700) directory owned by QEMU's user. A directory libqemu owns (`fix`) is
 * created (and remembered as created here) and repaired; a caller's directory is only checked, never
 * chmod/chown-ed.
 */
export async function ensureMonitorDir(dir: string, owner: QemuUser, options: { fix: boolean }): Promise<void> {
  if (typeof dir !== 'string' || !dir.startsWith('/')) {
    throw new InvalidArgumentError(`monitorDir must be an absolute path, got ${JSON.stringify(dir)}`, { hint: 'e.g. /run/libqemu or a directory under /tmp' });
  }
  const selfUid = process.getuid?.() ?? 0;
  const asRoot = selfUid === 0;
  let st: Stats | undefined;
  try {
    st = await fs.lstat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new MonitorDirError({ dir, problem: `cannot inspect: ${(err as Error).message}`, hint: 'check the path and its permissions', cause: err });
  }
  if (!st) {
    if (!options.fix) {
      throw new MonitorDirError({ dir, problem: 'does not exist', hint: `create it: mkdir -m 0700 ${dir} && chown ${owner.uid}:${owner.gid} ${dir} (QEMU's user)` });
    }
    await fs.mkdir(dirname(dir), { recursive: true });
    try {
      await fs.mkdir(dir, { mode: 0o700 });
      createdDirs.add(resolve(dir));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new MonitorDirError({ dir, problem: `cannot create: ${(err as Error).message}`, hint: 'choose a writable location with the monitorDir option', cause: err });
    }
    st = await fs.lstat(dir);
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new MonitorDirError({ dir, problem: 'is not a directory (or is a symlink)', hint: "point monitorDir at a real directory that only QEMU's user can enter" });
  }
  const wrongOwner = st.uid !== owner.uid;
  const wrongMode = (st.mode & 0o777) !== 0o700;
  if (wrongOwner || wrongMode) {
    if (!options.fix) {
      throw new MonitorDirError({
        dir,
        problem: `must be mode 0700 and owned by QEMU's uid ${owner.uid}, is ${(st.mode & 0o777).toString(8).padStart(4, '0')} owned by uid ${st.uid}`,
        hint: `chmod 0700 ${dir} && chown ${owner.uid}:${owner.gid} ${dir}, or let libqemu use its own directory (omit the path)`,
      });
    }
    if (wrongOwner && !asRoot && selfUid !== owner.uid) {
      throw new MonitorDirError({
        dir,
        problem: `is owned by uid ${st.uid} but QEMU runs as uid ${owner.uid}, and only root can change that`,
        hint: "run as root or as QEMU's user, or pass monitorDir pointing at a directory QEMU's user owns",
      });
    }
    if (wrongOwner) await fs.chown(dir, owner.uid, owner.gid);
    if (wrongMode) await fs.chmod(dir, 0o700);
  }
  await checkTraversable(dir, owner);
}

/** QEMU's user must be able to reach the directory: every ancestor needs search permission for it. */
async function checkTraversable(dir: string, owner: QemuUser): Promise<void> {
  if (owner.uid === 0) return;
  for (let p = dirname(resolve(dir)); ; p = dirname(p)) {
    const st = await fs.stat(p);
    const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) {
      throw new MonitorDirError({ dir, problem: `QEMU's uid ${owner.uid} cannot enter ${p}, so it cannot create its socket`, hint: "use a monitorDir whose parents QEMU's user can traverse (e.g. under /tmp or /run)" });
    }
    if (p === '/') break;
  }
}
