/**
 * What the migration engine needs from libvirt and from QMP, as small interfaces: src/migration/libvirt-ports.ts
 * implements them over src/libvirt, and QmpClient / QemuClient fit MigrationQmp as they are.
 */
import type { MigrationCall } from './options.js';
import type { JobStatsRecord } from './progress.js';

/** The source guest, on a connection that carries nothing but the migration call while it runs. */
export interface MigrationSource {
  /** The guest's name (for messages). */
  readonly name: string;
  /** virDomainGetXMLDesc(VIR_DOMAIN_XML_MIGRATABLE). */
  migratableXml(): Promise<string>;
  isPersistent(): Promise<boolean>;
  /**
   * virDomainMigrateToURI3, peer-to-peer. A long call: it runs off the main thread with deadline
   * `timeoutMs` (0 = none) and must not hold up calls on other connections.
   */
  migrateToUri3(destinationUri: string, call: MigrationCall, timeoutMs: number): Promise<void>;
  /** Releases what the port holds (e.g. a connection opened ahead for the call); called once, at the end. */
  close?(): Promise<void>;
}

/** libvirt events about the migrating guest. */
export type LibvirtMigrationEvent =
  | { kind: 'iteration'; iteration: number }
  | { kind: 'job-completed'; stats: JobStatsRecord }
  /** libvirt's lifecycle event and detail names, e.g. suspended/migrated. */
  | { kind: 'lifecycle'; event: string; detail: string };

/**
 * Calls made *while* the migration call is in flight, on a second connection to the source daemon:
 * with several RPCs in flight on one connection, libvirt 9.0 hangs or crashes when keepalive fires.
 */
export interface MigrationControl {
  /** virDomainGetJobStats of the running job (the `type` field is 0 when there is none). */
  jobStats(): Promise<JobStatsRecord>;
  /** virDomainAbortJob. */
  abortJob(): Promise<void>;
  /** virDomainMigrateSetMaxDowntime (QEMU's downtime-limit). */
  setMaxDowntime(ms: number): Promise<void>;
  suspend(): Promise<void>;
  resume(): Promise<void>;
  /** libvirt's state name ('running', 'paused', …), or undefined when the source no longer has the guest. */
  state(): Promise<string | undefined>;
  /** Delivers libvirt's migration-iteration, job-completed and lifecycle events; resolves to the unsubscribe. */
  subscribe(handler: (event: LibvirtMigrationEvent) => void): Promise<() => Promise<void>>;
  /** Releases what the control owns (its connection). */
  close(): Promise<void>;
}

/** The guest's own QMP route on the source (QmpClient or QemuClient). */
export interface MigrationQmp {
  execute(command: string, args?: Record<string, unknown>, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
  on(type: 'event', listener: (event: { event: string; data?: unknown }) => void): () => void;
  /** QemuClient's schema check; without it the engine asks query-migrate-parameters. */
  supports?(command: string, member?: string): Promise<boolean>;
  close?(): Promise<void>;
}
