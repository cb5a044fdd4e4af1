/**
 * Which libvirt daemons run on this machine, so that the monitor socket paths in their guests' XML can be
 * reached from here. A daemon reached through a unix socket runs here by construction. Over the network
 * the URI's spelling proves nothing (a forwarded port, a name that resolves elsewhere), so the daemon's
 * own identity decides: libvirt's host UUID, compared with this machine's.
 */
import { readFileSync } from 'node:fs';
import { isUnixSocketUri } from './uri.js';

export { isUnixSocketUri };

/** Environment variable listing further host UUIDs that stand for this machine (comma or space separated). */
export const SAME_HOST_UUIDS_ENV = 'LIBQEMU_SAME_HOST_UUIDS';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function readUuid(path: string): string | undefined {
  try {
    const v = readFileSync(path, 'utf8').trim().toLowerCase();
    if (UUID_RE.test(v)) return v;
    // /etc/machine-id: 32 hex digits, which libvirt (host_uuid_source = "machine-id") reads as a UUID
    if (/^[0-9a-f]{32}$/.test(v)) return `${v.slice(0, 8)}-${v.slice(8, 12)}-${v.slice(12, 16)}-${v.slice(16, 20)}-${v.slice(20)}`;
  } catch {
    // not there, or not readable by this user
  }
  return undefined;
}

/**
 * The host UUIDs a libvirt daemon on this machine reports: the SMBIOS system UUID (libvirt's default
 * source), /etc/machine-id (its "machine-id" source), and those listed in LIBQEMU_SAME_HOST_UUIDS (daemons
 * configured with a host_uuid of their own, e.g. the testing kit's private daemons).
 */
export function thisHostUuids(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const out = new Set<string>();
  for (const path of ['/sys/class/dmi/id/product_uuid', '/etc/machine-id']) {
    const u = readUuid(path);
    if (u) out.add(u);
  }
  for (const u of declaredUuids(env)) out.add(u);
  return out;
}

/** The UUIDs listed in LIBQEMU_SAME_HOST_UUIDS, lower-cased; anything else in it is ignored. */
function declaredUuids(env: NodeJS.ProcessEnv): string[] {
  return (env[SAME_HOST_UUIDS_ENV] ?? '')
    .split(/[\s,]+/)
    .map((u) => u.toLowerCase())
    .filter((u) => UUID_RE.test(u));
}

/**
 * Declares a host UUID as this machine's (for this process and the processes it starts): a daemon here
 * configured with its own host_uuid.
 */
export function declareSameHostUuid(uuid: string): void {
  const u = uuid.toLowerCase();
  if (!UUID_RE.test(u)) throw new TypeError(`not a UUID: ${uuid}`);
  const list = declaredUuids(process.env);
  if (!list.includes(u)) process.env[SAME_HOST_UUIDS_ENV] = [...list, u].join(',');
}

/** libvirt's host UUID in a capabilities document (`<capabilities><host><uuid>`). */
export function hostUuidFromCapabilities(xml: string): string | undefined {
  const host = /<host>([\s\S]*?)<\/host>/.exec(xml)?.[1];
  const uuid = host && /<uuid>\s*([0-9a-fA-F-]{36})\s*<\/uuid>/.exec(host)?.[1];
  return uuid ? uuid.toLowerCase() : undefined;
}

/** How a daemon was judged to be on this machine or not, and why (for errors and `hv.local`). */
export interface HostPlacement {
  local: boolean;
  /** 'unix-socket', 'host-uuid' (matched), 'other-host-uuid', or 'unknown-host-uuid'. */
  reason: 'unix-socket' | 'host-uuid' | 'other-host-uuid' | 'unknown-host-uuid';
  /** The daemon's host UUID, when it was asked. */
  hostUuid?: string;
}

/** Decides where a daemon runs: by its socket when local, else by its host UUID (`readCapabilities` asked only then). */
export async function placeDaemon(uri: string, readCapabilities: () => Promise<string>): Promise<HostPlacement> {
  if (isUnixSocketUri(uri)) return { local: true, reason: 'unix-socket' };
  let hostUuid: string | undefined;
  try {
    hostUuid = hostUuidFromCapabilities(await readCapabilities());
  } catch {
    hostUuid = undefined;
  }
  if (hostUuid === undefined) return { local: false, reason: 'unknown-host-uuid' };
  const local = thisHostUuids().has(hostUuid);
  return { local, reason: local ? 'host-uuid' : 'other-host-uuid', hostUuid };
}

/** Why a daemon is taken to be on another machine, in words. */
export function remoteReason(p: HostPlacement): string {
  if (p.reason === 'unknown-host-uuid') return 'that daemon did not report its host UUID, so it is taken to be on another host';
  return `that daemon reports host UUID ${p.hostUuid}, which is not this machine's (SMBIOS, /etc/machine-id or ${SAME_HOST_UUIDS_ENV}): it is on another host`;
}
