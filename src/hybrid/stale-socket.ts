import { promises as fs, type Stats } from 'node:fs';
import { probeSocket } from '../common/unix-socket.js';
import { MonitorUnavailableError } from './errors.js';

export type StaleCheck = 'absent' | 'removed' | 'live' | 'not-a-socket';

/**
 * A QEMU killed with SIGKILL leaves its socket file behind (connect gives ECONNREFUSED). Removes such
 * a file; leaves a live socket (and anything that is not a socket) alone.
 */
export async function removeStaleSocket(path: string, guest = '?'): Promise<StaleCheck> {
  let st: Stats;
  try {
    st = await fs.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(guest, path, err);
    throw err;
  }
  if (!st.isSocket()) return 'not-a-socket';
  const outcome = await probeSocket(path, 1000);
  if (outcome === 'refused') {
    await fs.unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    return 'removed';
  }
  if (outcome === 'denied') throw permissionDenied(guest, path);
  return 'live';
}

export function permissionDenied(guest: string, path: string, cause?: unknown): MonitorUnavailableError {
  return new MonitorUnavailableError({
    guest,
    socketPath: path,
    message: 'permission denied',
    hint: "run as root or as QEMU's user (the socket and its 0700 directory belong to QEMU's uid), or use guest.qmp({ via: 'passthrough' })",
    cause,
    reason: 'permission',
  });
}
