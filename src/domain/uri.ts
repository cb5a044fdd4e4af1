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
