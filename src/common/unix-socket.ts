import { connect } from 'node:net';

export type SocketProbe = 'open' | 'refused' | 'denied' | 'gone';

/**
 * Connects once to a unix socket and hangs up: 'open' (something listens), 'refused' (a stale file
 * nobody listens on, e.g. left by a SIGKILLed QEMU), 'denied' (permissions), or 'gone' (no such file,
 * or another error). A listener that is slow to accept still counts as 'open' after `timeoutMs`.
 */
export function probeSocket(path: string, timeoutMs: number): Promise<SocketProbe> {
  return new Promise((resolvePromise) => {
    const sock = connect({ path });
    const timer = setTimeout(() => finish('open'), timeoutMs);
    const finish = (r: SocketProbe) => {
      clearTimeout(timer);
      sock.destroy();
      resolvePromise(r);
    };
    sock.once('connect', () => finish('open'));
    sock.once('error', (err: NodeJS.ErrnoException) =>
      finish(err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'EACCES' || err.code === 'EPERM' ? 'denied' : 'gone'),
    );
  });
}
