/** libvirt's numbers for migration, from libvirt-domain.h / virterror.h (libvirt 9.0; stable ABI). */

/** virDomainMigrateFlags */
export const MigrateFlag = {
  LIVE: 1,
  PEER2PEER: 2,
  TUNNELLED: 4,
  PERSIST_DEST: 8,
  UNDEFINE_SOURCE: 16,
  PAUSED: 32,
  ABORT_ON_ERROR: 4096,
  AUTO_CONVERGE: 8192,
} as const;

/** VIR_MIGRATE_PARAM_* typed-parameter names */
export const MigrateParam = {
  URI: 'migrate_uri',
  DEST_XML: 'destination_xml',
  PERSIST_XML: 'persistent_xml',
  BANDWIDTH: 'bandwidth',
  LISTEN_ADDRESS: 'listen_address',
} as const;

/** virDomainEventID values the migration engine listens to */
export const DomainEventId = {
  LIFECYCLE: 0,
  MIGRATION_ITERATION: 20,
  JOB_COMPLETED: 21,
} as const;

/** virDomainJobType (first field of virDomainGetJobInfo / "type" of job stats) */
export const JobType = { NONE: 0, BOUNDED: 1, UNBOUNDED: 2, COMPLETED: 3, FAILED: 4, CANCELLED: 5 } as const;

/** virErrorNumber values that matter for classifying a failed migration */
export const VirErr = {
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  NO_CONNECT: 5,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  SYSTEM_ERROR: 38,
  RPC: 39,
  NO_DOMAIN: 42,
  AUTH_FAILED: 45,
  OPERATION_INVALID: 55,
  CONFIG_UNSUPPORTED: 67,
  OPERATION_TIMEOUT: 68,
  ARGUMENT_UNSUPPORTED: 74,
  OPERATION_ABORTED: 78,
  MIGRATE_UNSAFE: 81,
  OPERATION_UNSUPPORTED: 84,
  ACCESS_DENIED: 88,
} as const;

/** virDomainGetXMLDesc flags */
export const XmlFlag = { SECURE: 1, INACTIVE: 2, UPDATE_CPU: 4, MIGRATABLE: 8 } as const;
