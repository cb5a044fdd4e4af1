/**
 * The proxy's listening socket must be private: the socket 0600 inside a directory that only we can
 * enter (0700). A missing directory is created that way; an existing one that others can enter is
 * refused rather than silently changed, because it may be shared on purpose.
 */
import { promises as fs } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { probeSocket } from '../common/unix-socket.js';
import { ProxyError } from './errors.js';

/** Linux's sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export async function preparePrivateDir(dir: string): Promise<void> {
  let st = await fs.stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.chmod(dir, 0o700); // mkdir's mode is filtered by the umask
    st = await fs.stat(dir);
  }
  if (!st.isDirectory()) {
    throw new ProxyError(`${dir} is not a directory`, { hint: 'pass --listen DIR/NAME.sock with DIR a directory (it is created 0700 if missing)' });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new ProxyError(`the directory ${dir} belongs to uid ${st.uid}, not to us (uid ${uid})`, {
      hint: 'put the proxy socket in a directory of your own, e.g. $XDG_RUNTIME_DIR/libqemu',
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ProxyError(`the directory ${dir} is accessible to others (mode ${(st.mode & 0o777).toString(8)}), so the proxy socket would not be private`, {
      hint: `use a private directory: chmod 700 ${dir}, or name a path in a new directory (created 0700)`,
    });
  }
}

/** Validates the listen path and clears a stale socket left by a proxy that was killed. */
export async function prepareListenPath(path: string): Promise<string> {
  if (typeof path !== 'string' || path === '') {
    throw new ProxyError('the proxy needs a unix socket path to listen on', { hint: 'e.g. --listen /run/user/0/libqemu/web1.sock' });
  }
  const full = isAbsolute(path) ? path : resolve(path);
  if (Buffer.byteLength(full) > MAX_SOCKET_PATH_BYTES) {
    throw new ProxyError(`the socket path ${full} is longer than ${MAX_SOCKET_PATH_BYTES} bytes`, { hint: 'unix socket paths are limited to 107 bytes: choose a shorter one' });
  }
  await preparePrivateDir(dirname(full));
  const st = await fs.lstat(full).catch(() => undefined);
  if (st) {
    if (!st.isSocket()) {
      throw new ProxyError(`${full} exists and is not a socket`, { hint: 'choose another path; the proxy never overwrites a file' });
    }
    if ((await probeSocket(full, 1000)) === 'open') {
      throw new ProxyError(`something is already listening on ${full}`, { hint: 'stop the other proxy or choose another path' });
    }
    await fs.unlink(full); // stale: its owner is gone
  }
  return full;
}
