/** Connection: the generated class (every virConnect* function) on its hand-written core. */
export { Connection } from '../generated/libvirt/classes.js';
export type { ConnectionEvents, LibvirtVersion, OpenOptions } from './connection-core.js';
