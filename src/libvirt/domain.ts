import { InvalidArgumentError } from '../common/errors.js';
import type { DomainPtr } from '../../native/libvirt.js';
import { DOMAIN_STATE_NAMES, DOMAIN_STATE_REASON_NAMES } from './constants.js';
import type { Connection } from './connection.js';
import type { CallOptions } from './executor.js';
import { validateTypedParams, type TypedParam } from './typed-params.js';

export type DomainStateName = 'nostate' | 'running' | 'blocked' | 'paused' | 'shutdown' | 'shutoff' | 'crashed' | 'pmsuspended';

export interface DomainState {
  state: DomainStateName;
  /** libvirt's reason for the state, e.g. 'booted', 'user', 'destroyed' ('unknown-<n>' for numbers this libvirt build does not name). */
  reason: string;
}

export interface DomainInfo {
  state: DomainStateName;
  maxMemKiB: number;
  memoryKiB: number;
  vcpus: number;
  /** CPU time used, in nanoseconds. */
  cpuTimeNs: number;
}

/** A QMP reply exactly as libvirt returns it from virDomainQemuMonitorCommand (libvirt owns `id`). */
export type QemuMonitorReply =
  | { return: unknown; id?: string; error?: undefined }
  | { error: { class: string; desc: string }; id?: string; return?: undefined };

export function stateName(n: number): DomainStateName {
  return (DOMAIN_STATE_NAMES[n] ?? 'nostate') as DomainStateName;
}

export function reasonName(state: DomainStateName, n: number): string {
  return DOMAIN_STATE_REASON_NAMES[state]?.[n] ?? `unknown-${n}`;
}

function checkPowerFlags(call: string, flags: number | undefined): number {
  if (flags === undefined) return 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new InvalidArgumentError(`${call}: flags must be a non-negative integer, got ${String(flags)}`, { hint: '1 = ACPI power button, 2 = guest agent' });
  return flags;
}

const XML_SECURE = 1;
const XML_INACTIVE = 2;
const XML_MIGRATABLE = 8;
const START_PAUSED = 1;
const QEMU_MONITOR_COMMAND_HMP = 1;
const JOB_STATS_COMPLETED = 1;

/**
 * One libvirt domain on one Connection. `name` and `uuid` are fixed; everything else is asked of libvirt
 * (off the main thread). The native handle is released when this object is garbage-collected or when the
 * connection closes.
 */
export class Domain {
  /** @internal use Connection's methods to obtain domains. */
  constructor(
    readonly connection: Connection,
    /** The native handle, for code that binds further libvirt calls (see src/libvirt/ops.ts). */
    readonly pointer: DomainPtr,
    readonly name: string,
    readonly uuid: string,
  ) {}

  /** The running domain's id, or undefined when it is not running. */
  async id(options?: CallOptions): Promise<number | undefined> {
    return (await this.connection.exec('domainId', [this.pointer], options)) ?? undefined;
  }

  async state(options?: CallOptions): Promise<DomainState> {
    const [s, r] = await this.connection.exec('domainState', [this.pointer], options);
    const state = stateName(s);
    return { state, reason: reasonName(state, r) };
  }

  async info(options?: CallOptions): Promise<DomainInfo> {
    const raw = await this.connection.exec('domainInfo', [this.pointer], options);
    return { state: stateName(raw.state), maxMemKiB: raw.maxMemKiB, memoryKiB: raw.memoryKiB, vcpus: raw.vcpus, cpuTimeNs: raw.cpuTimeNs };
  }

  async isActive(options?: CallOptions): Promise<boolean> {
    return this.connection.exec('domainIsActive', [this.pointer], options);
  }

  async isPersistent(options?: CallOptions): Promise<boolean> {
    return this.connection.exec('domainIsPersistent', [this.pointer], options);
  }

  /** The domain XML; `inactive` = the persistent definition, `secure` = include secrets, `migratable` = for a migration target. */
  xml(options: { inactive?: boolean; secure?: boolean; migratable?: boolean } & CallOptions = {}): Promise<string> {
    const flags = (options.secure ? XML_SECURE : 0) | (options.inactive ? XML_INACTIVE : 0) | (options.migratable ? XML_MIGRATABLE : 0);
    return this.connection.exec('domainXml', [this.pointer, flags], options);
  }

  /** Starts a defined domain (virDomainCreateWithFlags); `paused` leaves its CPUs stopped. */
  start(options: { paused?: boolean } & CallOptions = {}): Promise<void> {
    return this.connection.exec('domainStart', [this.pointer, options.paused ? START_PAUSED : 0], options);
  }

  /**
   * Asks the guest to power off; returns before it has. A guest without an OS ignores it. `flags`:
   * virDomainShutdownFlagValues (1 = ACPI power button, 2 = guest agent; 0 = the hypervisor's choice).
   */
  shutdown(options?: CallOptions & { flags?: number }): Promise<void> {
    return this.connection.exec('domainShutdown', [this.pointer, checkPowerFlags('shutdown', options?.flags)], options);
  }

  /** Stops the domain at once (kills QEMU). A transient domain disappears. */
  destroy(options?: CallOptions): Promise<void> {
    return this.connection.exec('domainDestroy', [this.pointer], options);
  }

  suspend(options?: CallOptions): Promise<void> {
    return this.connection.exec('domainSuspend', [this.pointer], options);
  }

  resume(options?: CallOptions): Promise<void> {
    return this.connection.exec('domainResume', [this.pointer], options);
  }

  /** Asks the guest to reboot; returns before it has. `flags`: virDomainRebootFlagValues (1 = ACPI, 2 = guest agent). */
  reboot(options?: CallOptions & { flags?: number }): Promise<void> {
    return this.connection.exec('domainReboot', [this.pointer, checkPowerFlags('reboot', options?.flags)], options);
  }

  /** Resets the virtual machine at once (like the reset button). */
  reset(options?: CallOptions): Promise<void> {
    return this.connection.exec('domainReset', [this.pointer], options);
  }

  /** Removes the persistent definition; a running domain keeps running as a transient one. */
  undefine(options?: CallOptions): Promise<void> {
    return this.connection.exec('domainUndefine', [this.pointer], options);
  }

  /** libvirt's taint and deprecation messages for this domain, e.g. "tainted: custom monitor control commands issued". */
  messages(options?: CallOptions): Promise<string[]> {
    return this.connection.exec('domainMessages', [this.pointer], options);
  }

  /**
   * Sends one QMP command through libvirt's own monitor (virDomainQemuMonitorCommand; taints the domain
   * "custom-monitor"). Returns the reply as libvirt returns it, parsed: `{ return, id }`, or
   * `{ error: { class, desc }, id }` for a command QEMU rejected (that is not a thrown error).
   */
  async qemuMonitorCommand(command: string | Record<string, unknown>, options?: CallOptions): Promise<QemuMonitorReply> {
    const text = typeof command === 'string' ? command : JSON.stringify(command);
    if (typeof command === 'string') {
      try {
        const parsed: unknown = JSON.parse(command);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      } catch {
        throw new InvalidArgumentError(`qemuMonitorCommand expects a QMP command as JSON, got ${JSON.stringify(command.slice(0, 80))}`, {
          hint: 'pass e.g. {"execute":"query-status"} (an object or its JSON); for HMP text use qemuMonitorHmp()',
        });
      }
    } else if (typeof command !== 'object' || command === null || typeof command.execute !== 'string') {
      throw new InvalidArgumentError('qemuMonitorCommand expects an object with an "execute" string', { hint: 'pass e.g. { execute: "query-status" }' });
    }
    const reply = await this.connection.exec('qemuMonitorCommand', [this.pointer, text, 0], options);
    return JSON.parse(reply) as QemuMonitorReply;
  }

  /** Runs one HMP (human monitor) command line through libvirt, e.g. 'info status'; returns its text output. */
  qemuMonitorHmp(line: string, options?: CallOptions): Promise<string> {
    if (typeof line !== 'string' || line.trim() === '') {
      throw new InvalidArgumentError('qemuMonitorHmp expects a non-empty command line', { hint: "pass e.g. 'info status'" });
    }
    return this.connection.exec('qemuMonitorCommand', [this.pointer, line, QEMU_MONITOR_COMMAND_HMP], options);
  }

  /**
   * Sends one command to the QEMU guest agent (virDomainQemuAgentCommand) and returns its parsed reply.
   * `timeoutSeconds`: seconds to wait, or libvirt's -2 (block), -1 (default), 0 (don't wait).
   */
  async qemuAgentCommand(command: string | Record<string, unknown>, timeoutSeconds: number, options?: CallOptions): Promise<unknown> {
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < -2) {
      throw new InvalidArgumentError(`qemuAgentCommand timeoutSeconds must be an integer ≥ -2, got ${String(timeoutSeconds)}`, {
        hint: 'use seconds, or -2 (block), -1 (libvirt default), 0 (no wait)',
      });
    }
    const text = typeof command === 'string' ? command : JSON.stringify(command);
    const reply = await this.connection.exec('qemuAgentCommand', [this.pointer, text, timeoutSeconds], options);
    return reply === '' ? undefined : (JSON.parse(reply) as unknown);
  }

  // ---- migration (driven by src/migration; most callers want guest.migrate()) ----

  /**
   * virDomainMigrateToURI3, peer-to-peer: the source daemon opens `destinationUri` itself. The call
   * lasts as long as the migration and holds this connection's worker meanwhile: give it a fitting
   * deadline (`timeoutMs`, 0 = none) and make the calls needed during it (abortJob, jobStats) on
   * another connection.
   */
  migrateToURI3(destinationUri: string, params: TypedParam[], flags: number, options?: CallOptions): Promise<void> {
    if (typeof destinationUri !== 'string' || destinationUri === '') {
      throw new InvalidArgumentError('migrateToURI3 expects the destination libvirt URI', { hint: 'e.g. qemu+unix:///session?socket=/path/to/libvirt-sock' });
    }
    if (!Number.isInteger(flags) || flags < 0) throw new InvalidArgumentError(`migrateToURI3 flags must be a non-negative integer, got ${String(flags)}`);
    validateTypedParams(params);
    return this.connection.exec('migrateToURI3', [this.pointer, destinationUri, params, flags], options);
  }

  /** virDomainGetJobStats: the current job's type (0 none, 2 unbounded, 3 completed…) and VIR_DOMAIN_JOB_* statistics. */
  jobStats(options: { completed?: boolean } & CallOptions = {}): Promise<{ type: number; stats: Record<string, number | bigint | boolean | string> }> {
    return this.connection.exec('jobStats', [this.pointer, options.completed ? JOB_STATS_COMPLETED : 0], options);
  }

  /** virDomainAbortJob: cancels the running job (an outgoing migration: the guest keeps running here). */
  abortJob(options?: CallOptions): Promise<void> {
    return this.connection.exec('abortJob', [this.pointer], options);
  }

  /** virDomainMigrateSetMaxDowntime: QEMU's downtime-limit in ms (a value set before a migration is kept). */
  migrateSetMaxDowntime(ms: number, options?: CallOptions): Promise<void> {
    if (!Number.isSafeInteger(ms) || ms < 1) throw new InvalidArgumentError(`migrateSetMaxDowntime expects milliseconds ≥ 1, got ${String(ms)}`);
    return this.connection.exec('migrateSetMaxDowntime', [this.pointer, ms], options);
  }

  migrateGetMaxDowntime(options?: CallOptions): Promise<number> {
    return this.connection.exec('migrateGetMaxDowntime', [this.pointer], options);
  }
}
