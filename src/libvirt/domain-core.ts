/**
 * The hand-written half of Domain: its fixed identity and the friendly methods libqemu had before the
 * generated layer (xml(), state(), start(), qemuMonitorCommand()…), each built on a generated binding.
 * The generated Domain (src/generated/libvirt/classes.ts) extends it with one method per libvirt function.
 */
import { InvalidArgumentError } from '../common/errors.js';
import { virDomainCreateFlags, virDomainGetJobStatsFlags, virDomainQemuMonitorCommandFlags, virDomainStateNames, virDomainXMLFlags } from '../generated/libvirt/enums.js';
import { REASON_TYPES, stateWord, type DomainStateName } from './names.js';

export type { DomainStateName } from './names.js';
import type { CallOptions } from './executor.js';
import { LibvirtObject, type LibvirtContext, type TypedParamsObject } from './object.js';
import type { ObjectRef } from './spec.js';
import { validateTypedParams, type TypedParam } from './typed-params.js';


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
  const name = virDomainStateNames[n];
  return (name ? stateWord(name, 'VIR_DOMAIN_') : 'nostate') as DomainStateName;
}

export function reasonName(state: DomainStateName, n: number): string {
  const table = REASON_TYPES[state];
  const name = table?.names[n];
  return name ? stateWord(name, table.prefix) : `unknown-${n}`;
}

/** A QMP command (an object or its JSON) as the JSON text libvirt sends; throws InvalidArgumentError for anything else. */
function monitorCommandText(command: string | Record<string, unknown>): string {
  if (typeof command === 'string') {
    try {
      const parsed: unknown = JSON.parse(command);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    } catch {
      throw new InvalidArgumentError(`qemuMonitorCommand expects a QMP command as JSON, got ${JSON.stringify(command.slice(0, 80))}`, {
        hint: 'pass e.g. {"execute":"query-status"} (an object or its JSON); for HMP text use qemuMonitorHmp()',
      });
    }
    return command;
  }
  if (typeof command !== 'object' || command === null || typeof command.execute !== 'string') {
    throw new InvalidArgumentError('qemuMonitorCommand expects an object with an "execute" string', { hint: 'pass e.g. { execute: "query-status" }' });
  }
  return JSON.stringify(command);
}

function parseMonitorReply(reply: string): QemuMonitorReply {
  return JSON.parse(reply) as QemuMonitorReply;
}

/** `(unsigned int)-1`: virDomainGetID's answer for a domain that is not running. */
const NO_ID = 0xffffffff;

/**
 * One libvirt domain on one Connection. `name` and `uuid` are fixed; everything else is asked of libvirt
 * (off the main thread). The native handle is released when this object is garbage-collected or when the
 * connection closes.
 */
export class DomainCore extends LibvirtObject {
  declare readonly name: string;
  declare readonly uuid: string;

  /** @internal use Connection's methods to obtain domains. */
  constructor(context: LibvirtContext, ref: ObjectRef) {
    super(context, ref);
    if (ref.name === undefined || ref.uuid === undefined) throw new Error('a Domain needs its name and UUID');
  }

  /** The running domain's id, or undefined when it is not running. */
  async id(options?: CallOptions): Promise<number | undefined> {
    const id = (await this.context.call('virDomainGetID', '', [this.pointer], options)) as number;
    return id === NO_ID ? undefined : id;
  }

  async state(options?: CallOptions): Promise<DomainState> {
    const { state: s, reason: r } = (await this.context.call('virDomainGetState', 'u', [this.pointer, 0], options)) as { state: number; reason: number };
    const state = stateName(s);
    return { state, reason: reasonName(state, r) };
  }

  async info(options?: CallOptions): Promise<DomainInfo> {
    const raw = (await this.context.call('virDomainGetInfo', '', [this.pointer], options)) as Record<string, number | bigint>;
    return {
      state: stateName(Number(raw.state)),
      maxMemKiB: Number(raw.maxMem),
      memoryKiB: Number(raw.memory),
      vcpus: Number(raw.nrVirtCpu),
      cpuTimeNs: Number(raw.cpuTime),
    };
  }

  async isActive(options?: CallOptions): Promise<boolean> {
    return (await this.context.call('virDomainIsActive', '', [this.pointer], options)) as boolean;
  }

  async isPersistent(options?: CallOptions): Promise<boolean> {
    return (await this.context.call('virDomainIsPersistent', '', [this.pointer], options)) as boolean;
  }

  /** The domain XML; `inactive` = the persistent definition, `secure` = include secrets, `migratable` = for a migration target. */
  xml(options: { inactive?: boolean; secure?: boolean; migratable?: boolean } & CallOptions = {}): Promise<string> {
    const flags = (options.secure ? virDomainXMLFlags.VIR_DOMAIN_XML_SECURE : 0) | (options.inactive ? virDomainXMLFlags.VIR_DOMAIN_XML_INACTIVE : 0) | (options.migratable ? virDomainXMLFlags.VIR_DOMAIN_XML_MIGRATABLE : 0);
    return this.context.call('virDomainGetXMLDesc', 'u', [this.pointer, flags], options) as Promise<string>;
  }

  /** Starts a defined domain (virDomainCreateWithFlags); `paused` leaves its CPUs stopped. */
  async start(options: { paused?: boolean } & CallOptions = {}): Promise<void> {
    await this.context.call('virDomainCreateWithFlags', 'u', [this.pointer, options.paused ? virDomainCreateFlags.VIR_DOMAIN_START_PAUSED : 0], options);
  }

  /**
   * Asks the guest to power off; returns before it has. A guest without an OS ignores it. `flags`:
   * virDomainShutdownFlagValues (VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN, _GUEST_AGENT…; 0 = the hypervisor's choice).
   */
  async shutdown(options: CallOptions & { flags?: number } = {}): Promise<void> {
    if (options.flags) await this.context.call('virDomainShutdownFlags', 'u:flags', [this.pointer, options.flags], options);
    else await this.context.call('virDomainShutdown', '', [this.pointer], options);
  }

  /** Stops the domain at once (kills QEMU). A transient domain disappears. */
  async destroy(options?: CallOptions): Promise<void> {
    await this.context.call('virDomainDestroy', '', [this.pointer], options);
  }

  async suspend(options?: CallOptions): Promise<void> {
    await this.context.call('virDomainSuspend', '', [this.pointer], options);
  }

  async resume(options?: CallOptions): Promise<void> {
    await this.context.call('virDomainResume', '', [this.pointer], options);
  }

  /** Asks the guest to reboot; returns before it has. `flags`: virDomainRebootFlagValues (ACPI, guest agent…; 0 = the hypervisor's choice). */
  async reboot(options: CallOptions & { flags?: number } = {}): Promise<void> {
    await this.context.call('virDomainReboot', 'u:flags', [this.pointer, options.flags ?? 0], options);
  }

  /** Resets the virtual machine at once (like the reset button). */
  async reset(options?: CallOptions): Promise<void> {
    await this.context.call('virDomainReset', 'u', [this.pointer, 0], options);
  }

  /** Removes the persistent definition; a running domain keeps running as a transient one. */
  async undefine(options?: CallOptions): Promise<void> {
    await this.context.call('virDomainUndefine', '', [this.pointer], options);
  }

  /** libvirt's taint and deprecation messages for this domain, e.g. "tainted: custom monitor control commands issued". */
  messages(options?: CallOptions): Promise<string[]> {
    return this.context.call('virDomainGetMessages', 'u', [this.pointer, 0], options) as Promise<string[]>;
  }

  /**
   * Sends one QMP command through libvirt's own monitor (virDomainQemuMonitorCommand; taints the domain
   * "custom-monitor"). Returns the reply as libvirt returns it, parsed: `{ return, id }`, or
   * `{ error: { class, desc }, id }` for a command QEMU rejected (that is not a thrown error).
   */
  qemuMonitorCommand(command: string | Record<string, unknown>, options?: CallOptions): Promise<QemuMonitorReply> {
    // No async frame: the reply is parsed in the one callback chained to the call.
    return this.qemuMonitorCommandText(command, options).then(parseMonitorReply);
  }

  /**
   * qemuMonitorCommand() with libvirt's reply text as libvirt wrote it, unparsed (a relay passes it on
   * with only the id changed).
   */
  qemuMonitorCommandText(command: string | Record<string, unknown>, options?: CallOptions): Promise<string> {
    let text: string;
    try {
      text = monitorCommandText(command);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.context.call('virDomainQemuMonitorCommand', 's,u', [this.pointer, text, 0], options) as Promise<string>;
  }

  /** Runs one HMP (human monitor) command line through libvirt, e.g. 'info status'; returns its text output. */
  qemuMonitorHmp(line: string, options?: CallOptions): Promise<string> {
    if (typeof line !== 'string' || line.trim() === '') {
      throw new InvalidArgumentError('qemuMonitorHmp expects a non-empty command line', { hint: "pass e.g. 'info status'" });
    }
    return this.context.call('virDomainQemuMonitorCommand', 's,u', [this.pointer, line, virDomainQemuMonitorCommandFlags.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP], options) as Promise<string>;
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
    const reply = (await this.context.call('virDomainQemuAgentCommand', 's,i,u', [this.pointer, text, timeoutSeconds, 0], options)) as string;
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
    return this.context.call('virDomainMigrateToURI3', 's,p,u', [this.pointer, destinationUri, params, flags], options).then(() => undefined);
  }

  /** virDomainGetJobStats: the current job's type (0 none, 2 unbounded, 3 completed…) and VIR_DOMAIN_JOB_* statistics. */
  async jobStats(options: { completed?: boolean } & CallOptions = {}): Promise<{ type: number; stats: Record<string, number | bigint | boolean | string> }> {
    const r = (await this.context.call('virDomainGetJobStats', 'u', [this.pointer, options.completed ? virDomainGetJobStatsFlags.VIR_DOMAIN_JOB_STATS_COMPLETED : 0], options)) as { type: number; params: TypedParamsObject };
    return { type: r.type, stats: r.params };
  }

  /** virDomainAbortJob: cancels the running job (an outgoing migration: the guest keeps running here). */
  async abortJob(options?: CallOptions): Promise<void> {
    await this.context.call('virDomainAbortJob', '', [this.pointer], options);
  }

  /** virDomainMigrateSetMaxDowntime: QEMU's downtime-limit in ms (a value set before a migration is kept). */
  migrateSetMaxDowntime(ms: number, options?: CallOptions): Promise<void> {
    if (!Number.isSafeInteger(ms) || ms < 1) throw new InvalidArgumentError(`migrateSetMaxDowntime expects milliseconds ≥ 1, got ${String(ms)}`);
    return this.context.call('virDomainMigrateSetMaxDowntime', 'U,u', [this.pointer, ms, 0], options).then(() => undefined);
  }

  async migrateGetMaxDowntime(options?: CallOptions): Promise<number> {
    return Number(await this.context.call('virDomainMigrateGetMaxDowntime', 'u', [this.pointer, 0], options));
  }
}
