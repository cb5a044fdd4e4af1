/** Live migration: guest.migrate()'s engine, its options, progress, watchdog and errors. */
export { startMigration, MigrationJob, type MigrationResult, type MigrationStats, type StartMigrationInput } from './engine.js';
export { MigrationError, classifyMigrationFailure, type MigrationFailureReason } from './errors.js';
export type { MigrateOptions, QemuParameterValue } from './options.js';
export type { MigrationPhase, MigrationProgress, ProgressCause, ProgressSubscribeOptions } from './progress.js';
export type { WatchdogOptions, WatchdogAction, WatchdogState } from './watchdog.js';
export type { MigrationTarget } from './destination.js';
export type { MigrationControl, MigrationQmp, MigrationSource, LibvirtMigrationEvent } from './ports.js';
export { libvirtMigrationControl, libvirtMigrationSource, type DomainEventSource, type MigrationEventKind } from './libvirt-ports.js';
