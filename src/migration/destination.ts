import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import { DomainXml } from '../domain/domain-xml.js';
import { defaultMonitorDir, ensureMonitorDir, qemuUserFor } from '../domain/monitor-dir.js';
import { isLocalUri } from '../domain/uri.js';

/**
 * Where a guest goes: a libvirt URI, or a hypervisor the caller already has (the facade passes its URI
 * and its monitor directory, so the moved monitor lands where that Hypervisor looks for monitors).
 */
export interface MigrationTarget {
  /** The destination daemon's libvirt URI, as the *source daemon* will open it (p2p). */
  uri: string;
  /** The destination's private directory for second-monitor sockets, when known. */
  monitorDir?: string;
}

export function normalizeTarget(destination: string | MigrationTarget): MigrationTarget {
  const target = typeof destination === 'string' ? { uri: destination } : destination;
  if (typeof target !== 'object' || target === null || typeof target.uri !== 'string' || target.uri === '') {
    throw new InvalidArgumentError('the migration destination must be a libvirt URI or a Hypervisor', {
      hint: 'e.g. "qemu+unix:///session?socket=/path/to/libvirt-sock" or "qemu+ssh://host/system"',
    });
  }
  let url: URL;
  try {
    url = new URL(target.uri);
  } catch {
    throw new InvalidArgumentError(`'${target.uri}' is not a libvirt URI`, { hint: 'e.g. qemu+unix:///session?socket=/path/to/libvirt-sock' });
  }
  if (!/^qemu(\+[a-z]+)?:$/.test(url.protocol)) {
    throw new InvalidArgumentError(`'${target.uri}' is not a QEMU libvirt URI`, { hint: 'live migration needs qemu:// or qemu+TRANSPORT:// on both sides' });
  }
  if (target.monitorDir !== undefined && !target.monitorDir.startsWith('/')) {
    throw new InvalidArgumentError(`the destination monitor directory must be absolute, got '${target.monitorDir}'`);
  }
  return target;
}

export interface DestinationXmlPlan {
  /** The migratable XML with the second monitor moved (undefined: the guest has no second monitor). */
  xml: string | undefined;
  /** The monitor path on the source and on the destination (undefined without a second monitor). */
  sourceSocket: string | undefined;
  destinationSocket: string | undefined;
}

/**
 * The destination XML: the source's migratable XML with the second QMP monitor moved to a path of the
 * destination's own. The same path on both sides breaks the monitor for good: the destination re-binds
 * it, then whichever QEMU exits last unlinks it.
 */
export async function planDestinationXml(
  migratableXml: string,
  target: MigrationTarget,
  requestedSocket: string | undefined,
): Promise<DestinationXmlPlan> {
  const doc = DomainXml.parse(migratableXml);
  const monitors = doc.monitorSockets();
  if (monitors.length === 0) {
    if (requestedSocket !== undefined) {
      throw new InvalidArgumentError('destinationQmpSocket was given but the guest has no second QMP monitor to move', {
        hint: 'drop destinationQmpSocket; the guest is reached through libvirt passthrough on the destination',
      });
    }
    return { xml: undefined, sourceSocket: undefined, destinationSocket: undefined };
  }
  if (monitors.length > 1) {
    throw new InvalidArgumentError(`the guest has ${monitors.length} second QMP monitors; libqemu moves exactly one`, {
      hint: 'keep one <qemu:commandline> monitor per guest',
    });
  }
  const sourceSocket = monitors[0]!.path;
  const destinationSocket = requestedSocket ?? (await defaultDestinationSocket(sourceSocket, target));
  if (destinationSocket === sourceSocket) {
    throw new InvalidArgumentError(`the destination monitor path is the source's own (${sourceSocket})`, {
      hint: 'the same path on both sides breaks the monitor: give the destination its own monitor directory or destinationQmpSocket',
    });
  }
  doc.replaceMonitorSocketPath(sourceSocket, destinationSocket);
  return { xml: doc.toString(), sourceSocket, destinationSocket };
}

async function defaultDestinationSocket(sourceSocket: string, target: MigrationTarget): Promise<string> {
  const name = basename(sourceSocket);
  if (target.monitorDir) return join(target.monitorDir, name);
  if (!isLocalUri(target.uri)) {
    throw new InvalidArgumentError(`the destination ${target.uri} is on another host: libqemu cannot pick a directory there for the guest's second QMP monitor`, {
      hint: 'pass destinationQmpSocket (a path in a directory QEMU may create sockets in on that host)',
    });
  }
  // The directory a Hypervisor on that URI uses by default, so it finds the monitor afterwards.
  const owner = await qemuUserFor(target.uri);
  const dir = defaultMonitorDir(target.uri, owner.uid);
  if (dir !== dirname(sourceSocket)) {
    await ensureMonitorDir(dir, owner, { fix: true });
    return join(dir, name);
  }
  // Same directory on both sides: a sibling named after the destination, never the source's own path.
  const tag = createHash('sha256').update(target.uri).digest('hex').slice(0, 8);
  return join(dirname(sourceSocket), name.replace(/(\.sock)?$/, `-${tag}.sock`));
}
