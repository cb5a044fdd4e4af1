import { InvalidArgumentError } from '../common/errors.js';
import { stringMacros, virDomainMigrateFlags } from '../generated/libvirt/enums.js';
import { validateWatchdog, type NormalizedWatchdog, type WatchdogOptions } from './watchdog.js';

/** A QEMU migration parameter value (migrate-set-parameters member). */
export type QemuParameterValue = number | string | boolean;

export interface MigrateOptions {
  /** Live migration (default true). false: libvirt pauses the guest for the whole transfer. */
  live?: boolean;
  /** Carry the migration stream inside the libvirtd connections: no port, no migrationUri (default false). */
  tunnelled?: boolean;
  /**
   * QEMU's migration URI, `tcp://HOST[:PORT]` or `unix:///path`. Default for a destination on this
   * host: `tcp://127.0.0.1` (the port comes from the destination's migration_port_min..max); otherwise
   * libvirt's choice (the destination's hostname).
   */
  migrationUri?: string;
  /** The address the destination QEMU listens on. Default for a destination on this host: 127.0.0.1. */
  listenAddress?: string;
  /** Bandwidth cap in MiB/s, libvirt's unit (whole MiB/s). For finer limits use qemuParameters['max-bandwidth']. */
  bandwidthMiBs?: number;
  /** Define the guest on the destination (default: when it is defined on the source). */
  persistent?: boolean;
  /** Undefine the guest on the source after success (default: when persistent). */
  undefineSource?: boolean;
  /**
   * Where the guest's second QMP monitor listens on the destination. Default: the same file name in
   * the destination's monitor directory. It must differ from the source's path (both QEMUs bind it
   * on one host, and the one that exits last unlinks it).
   */
  destinationQmpSocket?: string;
  /** QEMU's downtime-limit in ms, set once the migration job exists. */
  maxDowntimeMs?: number;
  /**
   * QEMU migration parameters libvirt does not expose or overwrites (`max-bandwidth` in bytes/s,
   * `downtime-limit`, `x-*`…), set through QMP right after QEMU's MIGRATION `setup` event. Needs the
   * guest's QMP route; names the running QEMU does not know are rejected before anything starts.
   */
  qemuParameters?: Record<string, QemuParameterValue>;
  /** What to do if the migration has not finished by a deadline. Default: no watchdog (abort() still works). */
  watchdog?: WatchdogOptions;
  /** How often job statistics are read while someone consumes progress (default 500 ms, at least 50). */
  progressIntervalMs?: number;
  /**
   * Hard limit for the whole call in ms (default 0 = none; the watchdog is the gentle limit). When it
   * passes the migration is aborted, and after a grace period the call is released.
   */
  timeoutMs?: number;
  /** Aborting it aborts the migration (the guest keeps running on the source). */
  signal?: AbortSignal;
}

export interface NormalizedOptions {
  live: boolean;
  tunnelled: boolean;
  migrationUri: string | undefined;
  listenAddress: string | undefined;
  bandwidthMiBs: number | undefined;
  persistent: boolean | undefined;
  undefineSource: boolean | undefined;
  destinationQmpSocket: string | undefined;
  maxDowntimeMs: number | undefined;
  qemuParameters: Record<string, QemuParameterValue>;
  watchdog: NormalizedWatchdog | undefined;
  progressIntervalMs: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

const KNOWN = new Set<string>([
  'live', 'tunnelled', 'migrationUri', 'listenAddress', 'bandwidthMiBs', 'persistent', 'undefineSource',
  'destinationQmpSocket', 'maxDowntimeMs', 'qemuParameters', 'watchdog', 'progressIntervalMs', 'timeoutMs', 'signal',
]);

/** Checks every option up front, so that nothing starts with a mistake in it. */
export function normalizeOptions(options: MigrateOptions = {}): NormalizedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('migrate options must be an object', { hint: 'e.g. { bandwidthMiBs: 100, watchdog: { deadlineMs: 60000, action: "abort" } }' });
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new InvalidArgumentError(`unknown migrate option '${key}'`, { hint: `known options: ${[...KNOWN].join(', ')}` });
    }
  }
  const bool = (name: keyof MigrateOptions): boolean | undefined => {
    const v = options[name];
    if (v !== undefined && typeof v !== 'boolean') throw new InvalidArgumentError(`${name} must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean | undefined;
  };
  const str = (name: keyof MigrateOptions): string | undefined => {
    const v = options[name];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new InvalidArgumentError(`${name} must be a non-empty string, got ${JSON.stringify(v)}`);
    return v as string | undefined;
  };
  const int = (name: keyof MigrateOptions, min: number): number | undefined => {
    const v = options[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`, {
        hint: name === 'bandwidthMiBs' ? 'libvirt takes whole MiB/s; for less, set qemuParameters: { "max-bandwidth": bytesPerSecond }' : undefined,
      });
    }
    return v;
  };

  const tunnelled = bool('tunnelled') ?? false;
  const migrationUri = str('migrationUri');
  const listenAddress = str('listenAddress');
  if (tunnelled && (migrationUri || listenAddress)) {
    throw new InvalidArgumentError('tunnelled migration carries the stream through libvirtd: migrationUri and listenAddress do not apply', {
      hint: 'drop migrationUri/listenAddress, or tunnelled',
    });
  }
  if (migrationUri !== undefined && !/^(tcp:\/\/[^/]+|unix:\/\/\/.+|rdma:\/\/[^/]+)$/.test(migrationUri)) {
    throw new InvalidArgumentError(`migrationUri '${migrationUri}' is not a QEMU migration URI libvirt accepts`, {
      hint: 'use tcp://HOST[:PORT] or unix:///absolute/path.sock',
    });
  }
  const qemuParameters = options.qemuParameters ?? {};
  if (typeof qemuParameters !== 'object' || qemuParameters === null || Array.isArray(qemuParameters)) {
    throw new InvalidArgumentError('qemuParameters must be an object of migrate-set-parameters members', { hint: 'e.g. { "downtime-limit": 500 }' });
  }
  for (const [name, value] of Object.entries(qemuParameters)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new InvalidArgumentError(`qemuParameters: '${name}' is not a QEMU parameter name`, { hint: 'QEMU names are lower-case with dashes, e.g. downtime-limit' });
    }
    if (!['number', 'string', 'boolean'].includes(typeof value) || (typeof value === 'number' && !Number.isFinite(value))) {
      throw new InvalidArgumentError(`qemuParameters['${name}'] must be a number, string or boolean, got ${JSON.stringify(value)}`);
    }
  }
  const progressIntervalMs = int('progressIntervalMs', 50) ?? 500;
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  const persistent = bool('persistent');
  const undefineSource = bool('undefineSource');
  if (undefineSource && persistent === false) {
    throw new InvalidArgumentError('undefineSource without persistent would leave the guest defined nowhere', { hint: 'set persistent: true, or drop undefineSource' });
  }
  const destinationQmpSocket = str('destinationQmpSocket');
  if (destinationQmpSocket !== undefined && !destinationQmpSocket.startsWith('/')) {
    throw new InvalidArgumentError(`destinationQmpSocket must be an absolute path, got '${destinationQmpSocket}'`);
  }
  return {
    live: bool('live') ?? true,
    tunnelled,
    migrationUri,
    listenAddress,
    bandwidthMiBs: int('bandwidthMiBs', 1),
    persistent,
    undefineSource,
    destinationQmpSocket,
    maxDowntimeMs: int('maxDowntimeMs', 1),
    qemuParameters: { ...qemuParameters },
    watchdog: options.watchdog === undefined ? undefined : validateWatchdog(options.watchdog),
    progressIntervalMs,
    timeoutMs: int('timeoutMs', 0) ?? 0,
    signal,
  };
}

/** One virTypedParameter for virDomainMigrateToURI3 (the shape of src/libvirt's TypedParam). */
export type MigrationParam = { field: string; type: 'string'; value: string } | { field: string; type: 'ullong'; value: number };

export interface MigrationCall {
  params: MigrationParam[];
  flags: number;
}

/**
 * The typed parameters and flags for virDomainMigrateToURI3 (peer-to-peer: the source daemon opens the
 * destination itself, one RPC for the whole migration).
 */
export function buildMigrationCall(
  o: NormalizedOptions,
  ctx: { destinationIsLocal: boolean; persistent: boolean; destinationXml?: string; persistentXml?: string },
): MigrationCall {
  let flags: number = virDomainMigrateFlags.VIR_MIGRATE_PEER2PEER;
  if (o.live) flags |= virDomainMigrateFlags.VIR_MIGRATE_LIVE;
  if (o.tunnelled) flags |= virDomainMigrateFlags.VIR_MIGRATE_TUNNELLED;
  if (ctx.persistent) flags |= virDomainMigrateFlags.VIR_MIGRATE_PERSIST_DEST;
  if (ctx.persistent && (o.undefineSource ?? true)) flags |= virDomainMigrateFlags.VIR_MIGRATE_UNDEFINE_SOURCE;
  const params: MigrationParam[] = [];
  const s = (field: string, value: string | undefined) => value !== undefined && params.push({ field, type: 'string', value });
  if (!o.tunnelled) {
    s(stringMacros.VIR_MIGRATE_PARAM_URI, o.migrationUri ?? (ctx.destinationIsLocal ? 'tcp://127.0.0.1' : undefined));
    // Without it the destination QEMU listens on every address (*:PORT), not only loopback.
    const uri = o.migrationUri ?? (ctx.destinationIsLocal ? 'tcp://127.0.0.1' : undefined);
    const listen = o.listenAddress ?? (ctx.destinationIsLocal && uri?.startsWith('tcp://') ? '127.0.0.1' : undefined);
    s(stringMacros.VIR_MIGRATE_PARAM_LISTEN_ADDRESS, listen);
  }
  s(stringMacros.VIR_MIGRATE_PARAM_DEST_XML, ctx.destinationXml);
  if (ctx.persistent) s(stringMacros.VIR_MIGRATE_PARAM_PERSIST_XML, ctx.persistentXml);
  if (o.bandwidthMiBs !== undefined) params.push({ field: stringMacros.VIR_MIGRATE_PARAM_BANDWIDTH, type: 'ullong', value: o.bandwidthMiBs });
  return { params, flags };
}
