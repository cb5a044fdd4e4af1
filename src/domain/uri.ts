import { hostname } from 'node:os';

/** Is the libvirt URI served on this host (so a monitor socket path in its XML is reachable here)? */
export function isLocalUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  const host = url.hostname;
  if (host === '' || host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '::1') {
    // a transport like +ssh or +tcp to localhost still reaches this host's files
    return true;
  }
  return host === hostname();
}

/**
 * Whether libvirt can pass file descriptors to this URI's daemon (virDomainQemuMonitorCommandWithFiles):
 * only over a local unix socket (no host, no transport or `+unix`) or in-process (`qemu:///embed`).
 * Over +tcp/+tls/+ssh libvirt refuses, and measured on libvirt 9.0 it also drops the connection, so
 * this must be known before anything is sent.
 */
export function uriPassesFds(uri: string): boolean {
  return /^qemu(\+unix)?:/.test(uri) && isUnixSocketUri(uri);
}

/** Whether the URI reaches its daemon through a unix socket on this machine (no host part). */
export function isUnixSocketUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  const transport = url.protocol.replace(/:$/, '').split('+')[1];
  return url.hostname === '' && (transport === undefined || transport === 'unix');
}
