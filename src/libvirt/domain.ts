/** Domain: the generated class (every virDomain* function) on its hand-written core. */
export { Domain } from '../generated/libvirt/classes.js';
export type { DomainInfo, DomainState, DomainStateName, QemuMonitorReply } from './domain-core.js';
