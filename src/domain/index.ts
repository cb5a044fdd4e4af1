/** Guest-independent pieces both the facade and the migration use: domain XML, monitor directories, URIs. */
export { DomainXml, QEMU_XML_NS, MAX_SOCKET_PATH_BYTES, type MonitorSocketSpec } from './domain-xml.js';
export { DomainXmlError, MonitorDirError } from './errors.js';
export { ensureMonitorDir, defaultMonitorDir, qemuUserFor, type QemuUser } from './monitor-dir.js';
export { isLocalUri } from './uri.js';
export { SAME_HOST_UUIDS_ENV, declareSameHostUuid, thisHostUuids, type HostPlacement } from './host-identity.js';
