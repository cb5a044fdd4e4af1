export { Hypervisor, type HypervisorOptions, type GuestSummary, type DefineGuestOptions, type OpenQmpTarget } from './hypervisor.js';
export { Guest, type QmpVia, type GuestQmpOptions, type GuestEvent, type GuestEventsOptions, type GuestEventStream } from './guest.js';
export { GuestQmpClient, type QmpRoute, type GuestQmpClientOptions } from './guest-client.js';
export { OwnershipPolicy, classifyCommand, type CommandKind, type CommandClassification, type PolicyOptions } from './policy.js';
export {
  PolicyError,
  GuestNotFoundError,
  GuestNotRunningError,
  MonitorUnavailableError,
  type MonitorUnavailableReason,
  MonitorDisconnectedError,
  DomainXmlError,
  MonitorDirError,
} from './errors.js';
export { DomainXml, QEMU_XML_NS, MAX_SOCKET_PATH_BYTES, type MonitorSocketSpec } from './domain-xml.js';
export { PassthroughTransport, libvirtEventFilter, type PassthroughTransportOptions } from './passthrough-transport.js';
export { MonitorTransport, DISCONNECTED_ERROR_CLASS, type MonitorTransportOptions, type MonitorConnectionChange } from './monitor-transport.js';
export { MonitorHub, MonitorChannel } from './monitor-hub.js';
export { ensureMonitorDir, removeStaleSocket, defaultMonitorDir, qemuUserFor, isLocalUri, type QemuUser } from './monitor-dir.js';
export { parseTaints, type Taint, type TaintReport } from './taint.js';
export { LibvirtAgentTransport, LibvirtGuestAgent, agentErrorFromLibvirt, type AgentLifecycleEvent, type AgentLifecycleStream, type LibvirtAgentTransportOptions } from './guest-agent.js';
export { GuestShutdownTimeoutError, type GuestShutdownOptions, type GuestRebootOptions, type PowerMode } from './guest-power.js';
