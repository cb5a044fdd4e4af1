export { Hypervisor, type HypervisorOptions, type HypervisorEvents, type GuestSummary, type DefineGuestOptions, type OpenQmpTarget } from './hypervisor.js';
export { Guest, type GuestQmpOptions, type GuestMigrationResult } from './guest.js';
export type { QmpVia } from './guest-routes.js';
export { uncheckedEventNames, type GuestEvent, type GuestQmpEvent, type GuestEventsOptions, type GuestEventStream, type QemuEventName, type UncheckedEventName } from './guest-events.js';
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
export { PassthroughTransport, libvirtPassthroughTarget, type PassthroughTarget, type PassthroughEventSource, type PassthroughTransportOptions, type MonitorReply } from './passthrough-transport.js';
export type { MonitorConnectionChange } from './monitor-transport.js';
export type { GuestMigrationDestination, GuestMigrationOutcome } from './guest-migration.js';
export { parseTaints, type Taint, type TaintReport } from './taint.js';
export { LibvirtAgentTransport, LibvirtGuestAgent, type AgentLifecycleEvent, type AgentLifecycleStream, type LibvirtAgentTransportOptions } from './guest-agent.js';
export { GuestShutdownTimeoutError, type GuestShutdownOptions, type GuestRebootOptions, type PowerMode } from './guest-power.js';
export type { GuestChangeOptions, UpdateDeviceOptions } from './guest-devices.js';
export { GuestSnapshots, type GuestSnapshotInfo } from './guest-snapshots.js';
export type { GuestStats } from './guest-stats.js';
export type { GuestConsoleOptions, GuestScreenshot } from './guest-console.js';
