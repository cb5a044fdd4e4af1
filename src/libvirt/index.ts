export { Connection, type OpenOptions, type LibvirtVersion, type ConnectionEvents } from './connection.js';
export { Domain, type DomainState, type DomainStateName, type DomainInfo, type QemuMonitorReply } from './domain.js';
// The other generated object classes (one per libvirt object type); the constants and the manifests
// (LIBVIRT_BINDINGS / LIBVIRT_SKIPPED) have entry points of their own: libqemu/libvirt/constants, libqemu/libvirt/manifests.
export {
  DomainCheckpoint,
  DomainSnapshot,
  Interface,
  Network,
  NetworkPort,
  NodeDevice,
  NWFilter,
  NWFilterBinding,
  Secret,
  StoragePool,
  StorageVol,
  Stream,
} from '../generated/libvirt/classes.js';
export { LibvirtObject, type LibvirtContext, type TypedParamsInput, type TypedParamsObject, type DomainStatsRecord } from './object.js';
// The hand-written cores the generated classes extend, and what their signatures mention.
export { ConnectionCore, type ObjectClasses } from './connection-core.js';
export { DomainCore } from './domain-core.js';
export { StreamCore, type StreamIoOptions } from './stream-core.js';
export type { ObjectRef } from './spec.js';
export { DOMAIN_EVENT_IDS, NETWORK_EVENT_IDS, NODE_DEVICE_EVENT_IDS, SECRET_EVENT_IDS, STORAGE_POOL_EVENT_IDS } from '../generated/libvirt/event-ids.js';
export { LibvirtError, LibvirtTimeoutError, type LibvirtErrorData } from './errors.js';
export {
  EventStream,
  type DomainEvent,
  type DomainEventKind,
  type DomainEventOptions,
  type DomainEventName,
  type GenericDomainEvent,
  type ObjectEvent,
  type ObjectEventOptions,
  type DomainIdentity,
  type LifecycleEventName,
  type QemuMonitorEvent,
  type QemuMonitorEventOptions,
  type SubscriptionOptions,
} from './events.js';
export type { CallOptions } from './executor.js';
export type { TypedParam, TypedParamValue } from './typed-params.js';
