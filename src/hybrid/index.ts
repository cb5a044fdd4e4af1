export { Hypervisor, type HypervisorOptions, type GuestSummary, type DefineGuestOptions, type OpenQmpTarget } from './hypervisor.js';
export { Guest, type GuestQmpOptions, type GuestMigrationResult } from './guest.js';
export type { QmpVia } from './guest-routes.js';
export type { GuestEvent, GuestEventsOptions, GuestEventStream } from './guest-events.js';
export { GuestQmpClient, type QmpRoute, type GuestQmpClientOptions } from './guest-client.js';
export { OwnershipPolicy, classifyCommand, type CommandKind, type CommandClassification, type PolicyOptions, type PolicyCallOptions } from './policy.js';
export {
  PolicyError,
  GuestNotFoundError,
  GuestNotRunningError,
  MonitorUnavailableError,
  type MonitorUnavailableReason,
  type MonitorUnavailableOptions,
  MonitorDisconnectedError,
} from './errors.js';
export { PassthroughTransport, libvirtEventFilter, type PassthroughTransportOptions } from './passthrough-transport.js';
export { MonitorTransport, type MonitorTransportOptions, type MonitorConnectionChange } from './monitor-transport.js';
export { MonitorHub, MonitorChannel } from './monitor-hub.js';
export { removeStaleSocket } from './stale-socket.js';
export type { GuestMigrationDestination, GuestMigrationOutcome } from './guest-migration.js';
export { parseTaints, type Taint, type TaintReport } from './taint.js';
export { LibvirtAgentTransport, LibvirtGuestAgent, agentErrorFromLibvirt, type AgentLifecycleEvent, type AgentLifecycleStream, type LibvirtAgentTransportOptions } from './guest-agent.js';
export { GuestShutdownTimeoutError, type GuestShutdownOptions, type GuestRebootOptions, type PowerMode } from './guest-power.js';
