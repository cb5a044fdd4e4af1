/**
 * What a Guest needs from outside itself, as narrow interfaces: the part of its libvirt domain it
 * calls, and the part of the Hypervisor that made it (bound to that domain). The Hypervisor hands in
 * the real ones; unit tests hand in small fakes.
 */
import type { HostPlacement } from '../domain/host-identity.js';
import type { LibvirtAgentTransport } from './guest-agent.js';
import type { OverflowPolicy } from '../common/bounded-queue.js';
import type { Stream } from '../generated/libvirt/classes.js';
import type { Domain } from '../libvirt/domain.js';
import type { ReservedLane } from '../libvirt/connection-core.js';
import type { LibvirtError } from '../libvirt/errors.js';
import type { TypedParamsObject } from '../libvirt/object.js';
import type { ConnectionGap, DomainEvent, DomainEventKind, QemuMonitorEvent } from '../libvirt/events.js';
import type { MigrationJob } from '../migration/engine.js';
import type { MigrateOptions } from '../migration/options.js';
import type { MigrationQmp } from '../migration/ports.js';
import type { QmpTransport } from '../qmp/transport.js';
import type { GuestMigrationDestination, GuestMigrationOutcome } from './guest-migration.js';
import type { TaintReport } from './taint.js';

/** What a Guest calls on its libvirt domain (a libvirt `Domain` is one). */
export type GuestDomain = Pick<
  Domain,
  | 'name' | 'uuid' | 'state' | 'info' | 'xml' | 'start' | 'shutdown' | 'destroy' | 'suspend' | 'resume' | 'reboot' | 'reset' | 'undefine' | 'messages'
  | 'isPersistent' | 'attachDeviceFlags' | 'detachDeviceFlags' | 'updateDeviceFlags' | 'setMemoryFlags' | 'setVcpusFlags'
  | 'snapshotCreateXML' | 'listAllSnapshots' | 'snapshotLookupByName' | 'openConsole' | 'screenshot'
>;

/** A libvirt event subscription as a Guest uses it (a libvirt EventStream is one). */
export interface GuestEventSource<T> extends AsyncIterableIterator<T> {
  /** Resolves once libvirt has registered the callback. */
  readonly ready: Promise<void>;
  /** Stops the subscription. */
  return(): Promise<IteratorResult<T>>;
}

/** A guest's passthrough for a thread of its own (see Guest.reservePassthrough). */
export interface PassthroughReservation {
  readonly guest: string;
  readonly uuid: string;
  /** The hypervisor's libvirt URI. */
  readonly uri: string;
  /** The libvirt connection reserved for the thread; release() it when done. */
  readonly lane: ReservedLane;
  /** The guest's QEMU events as libvirt relays them, filtered by libvirt. */
  events(filter: { event?: string; regex?: boolean; bufferSize: number }): GuestEventSource<QemuMonitorEvent | ConnectionGap>;
}

/** What a Guest asks of its Hypervisor; `G` is the guest type a migration hands back. */
export interface GuestContext<G = unknown> {
  /** The libvirt URI (for messages). */
  readonly uri: string;
  /** The daemon runs on this host, so the monitor socket paths in its XML can be reached from here. */
  readonly local: boolean;
  /** How that was decided (unix socket, or the daemon's host UUID). */
  readonly placement: HostPlacement;
  /** libqemu's own monitor directory for this hypervisor. */
  readonly monitorDir: string;
  /** False once the hypervisor (or its libvirt connection) is closed. */
  readonly isOpen: boolean;
  /** Makes a monitor directory usable (creating and repairing libqemu's own). */
  prepareMonitorDir(dir: string): Promise<void>;
  /** Passes fresh taint marks on to the hypervisor's `onTaint`. */
  reportTaint(report: TaintReport): void;
  /** libvirt's events of this guest. */
  domainEvents(options: { kinds: DomainEventKind[]; bufferSize: number; overflow?: OverflowPolicy }): GuestEventSource<DomainEvent | ConnectionGap>;
  /** QEMU's events of this guest as libvirt relays them, filtered by libvirt (`event`, `regex`). */
  qemuMonitorEvents(options: { event?: string; regex?: boolean; bufferSize: number }): GuestEventSource<QemuMonitorEvent | ConnectionGap>;
  /** A transport to this guest's QEMU guest agent (virDomainQemuAgentCommand) on the hypervisor's connection. */
  agentTransport(): LibvirtAgentTransport;
  /** A transport over libvirt's passthrough (virDomainQemuMonitorCommand) to this guest's QEMU. */
  passthroughTransport(options: { events?: readonly string[] }): QmpTransport;
  /** A libvirt connection of the hypervisor's, reserved whole for one thread's blocking calls (see ConnectionCore.reserveLane). */
  reserveLane(lost: (reason: LibvirtError) => void): Promise<ReservedLane>;
  /** libvirt's statistics of this guest (virDomainListGetStats, every group). */
  domainStats(): Promise<TypedParamsObject>;
  /** A new non-blocking libvirt stream (for the console and screenshots). */
  openStream(): Promise<Stream>;
  /** Starts migrating this guest (see Guest.migrate). */
  migrate(input: {
    destination: GuestMigrationDestination<G> | string;
    options: MigrateOptions | undefined;
    /** The guest's QMP client for the engine (undefined: no route, libvirt's progress alone). */
    qmp: () => Promise<MigrationQmp | undefined>;
  }): MigrationJob<GuestMigrationOutcome<G>>;
}
