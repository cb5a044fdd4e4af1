export { Connection, type OpenOptions, type LibvirtVersion, type ConnectionEvents } from './connection.js';
export { Domain, type DomainState, type DomainStateName, type DomainInfo, type QemuMonitorReply } from './domain.js';
export { LibvirtError, LibvirtTimeoutError, type LibvirtErrorData } from './errors.js';
export {
  EventStream,
  type DomainEvent,
  type DomainEventKind,
  type DomainEventOptions,
  type DomainIdentity,
  type LifecycleEventName,
  type QemuMonitorEvent,
  type QemuMonitorEventOptions,
  type SubscriptionOptions,
} from './events.js';
export type { CallOptions } from './executor.js';
export type { ConnectPtr, DomainPtr, Pointer } from '../../native/libvirt.js';
export {
  encodeTypedParams,
  decodeTypedParams,
  validateTypedParams,
  typedParamsToObject,
  type TypedParam,
  type TypedParamValue,
  type EncodedTypedParams,
} from './typed-params.js';
