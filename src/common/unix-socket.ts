import { connect } from 'node:net';

export type SocketProbe = 'open' | 'refused' | 'denied' | 'gone';

/**
 * Connects once to a unix socket (a path) or a TCP port and hangs up: 'open' (something listens),
 * 'refused' (nobody listens, e.g. a stale file left by a SIGKILLed QEMU), 'denied' (permissions), or
 * 'gone' (no such file, or another error). A listener that is slow to accept still counts as 'open'
 * after `timeoutMs`.
 */
export function probeSocket(target: string | { host: string; port: number }, timeoutMs: number): Promise<SocketProbe> {
  return new Promise((resolvePromise) => {
    const sock = typeof target === 'string' ? connect({ path: target }) : connect(target);
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
