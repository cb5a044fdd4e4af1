import { InvalidArgumentError } from '../common/errors.js';
import type { ExecuteOptions } from '../qmp/command-map.js';
import type { CommandCall, CommandValidator } from '../qmp/validator.js';
import { PolicyError } from './errors.js';
import { FD_COMMANDS, FD_NOTES, FdSetOwnership } from './fdset-policy.js';
import { withLibqemuCalls } from './policy-calls.js';

/**
 * The ownership policy. libvirt's contract (libvirt-qemu.c): a command that only queries is safe; one
 * that alters state libvirt tracks "is unsafe, and may cause libvirtd to crash"; one that alters
 * state libvirt does not track is possible. So:
 * - `read-only`: `query-*` and a short reviewed list — always pass;
 * - `runstate`: stop/cont/system_reset/… — pass, because libvirt follows them through QEMU's own
 *   events on its monitor (measured: a QMP `stop` makes libvirt report `paused`);
 * - `libvirt-owned`: devices, block graph, block jobs, migration, `quit`, … — refused with a
 *   PolicyError naming the libvirt API to use instead, unless the caller opts in;
 * - `untracked`: everything else (the QEMU features libvirt lacks) — pass. The fd commands (add-fd,
 *   remove-fd, getfd, closefd) are untracked on the client's own fd sets and names only: see
 *   fdset-policy.ts; libvirt's fd sets are refused like libvirt-owned state.
 */
export type CommandKind = 'read-only' | 'runstate' | 'untracked' | 'libvirt-owned';

export interface CommandClassification {
  command: string;
  kind: CommandKind;
  /** libvirt-owned: what libvirt would lose track of. */
  reason?: string;
  /** libvirt-owned: the libvirt API (and libqemu call) to use instead. */
  instead?: string;
  /** Passing commands with a caveat (e.g. libvirt's XML will not show the change). */
  note?: string;
}

interface Rule {
  reason: string;
  instead: string;
}

const READ_ONLY = new Set([
  'qom-get',
  'qom-list',
  'qom-list-types',
  'qom-list-properties',
  'device-list-properties',
  'trace-event-get-state',
]);

const RUNSTATE = new Set(['stop', 'cont', 'system_reset', 'system_powerdown', 'system_wakeup']);
/** The same, as HMP spells them (`c` is HMP's short form of `cont`). */
const HMP_RUNSTATE = new Set(['stop', 'cont', 'c', 'system_reset', 'system_powerdown', 'system_wakeup']);

const DEVICES: Rule = {
  reason: 'libvirt tracks every device of the guest in its live XML and would no longer match QEMU',
  instead: 'virDomainAttachDeviceFlags / virDomainDetachDeviceFlags (virsh attach-device / detach-device)',
};
const BLOCK_GRAPH: Rule = {
  reason: 'libvirt owns the block graph (node names, backing chains, images) and its security labels',
  instead: 'virDomainAttachDeviceFlags for new disks, virDomainBlockCopy / virDomainBlockCommit / virDomainBlockPull for chains',
};
const BLOCK_JOBS: Rule = {
  reason: 'libvirt tracks block jobs and finalises them itself',
  instead: 'virDomainBlockJobAbort / virDomainBlockJobSetSpeed / virDomainBlockCopy / virDomainBlockCommit / virDomainBlockPull / virDomainBackupBegin',
};
const MIGRATION: Rule = {
  reason: 'libvirt drives migration (capabilities, switchover, destination) as a job of its own',
  instead: 'virDomainMigrate3 / virDomainMigrateToURI3 (guest.migrate()); migrate-set-parameters stays allowed for knobs libvirt lacks',
};

const LIBVIRT_OWNED = new Map<string, Rule>([
  ['device_add', DEVICES],
  ['device_del', DEVICES],
  ['netdev_add', { ...DEVICES, instead: 'virDomainAttachDeviceFlags with an <interface> (virsh attach-interface)' }],
  ['netdev_del', { ...DEVICES, instead: 'virDomainDetachDeviceFlags with the <interface> (virsh detach-interface)' }],
  ['chardev-add', { ...DEVICES, instead: 'virDomainAttachDeviceFlags with a <serial>/<channel>/<console>' }],
  ['chardev-remove', { ...DEVICES, instead: 'virDomainDetachDeviceFlags with the <serial>/<channel>/<console>' }],
  ['chardev-change-backend', { ...DEVICES, instead: 'virDomainUpdateDeviceFlags with the changed character device' }],
  ['object-add', { reason: 'libvirt creates and tracks memory backends, iothreads, secrets and TLS credentials', instead: 'virDomainAttachDeviceFlags (<memory>), virDomainAddIOThread, virSecretDefineXML' }],
  ['object-del', { reason: 'libvirt creates and tracks memory backends, iothreads, secrets and TLS credentials', instead: 'virDomainDetachDeviceFlags (<memory>), virDomainDelIOThread' }],
  ['quit', { reason: 'libvirt owns the QEMU process; quitting it behind libvirt\'s back ends the guest outside its lifecycle calls', instead: 'virDomainDestroy / virDomainShutdown (guest.destroy(), guest.shutdown())' }],
  ['balloon', { reason: 'libvirt tracks the current memory of the guest', instead: 'virDomainSetMemoryFlags (virsh setmem)' }],
  ['set_password', { reason: 'libvirt tracks graphics passwords in the domain XML', instead: 'virDomainUpdateDeviceFlags with <graphics passwd=…>' }],
  ['expire_password', { reason: 'libvirt tracks graphics passwords in the domain XML', instead: 'virDomainUpdateDeviceFlags with <graphics passwdValidTo=…>' }],
  ['change-vnc-password', { reason: 'libvirt tracks graphics passwords in the domain XML', instead: 'virDomainUpdateDeviceFlags with <graphics passwd=…>' }],
  ['set-action', { reason: 'libvirt starts QEMU with -no-shutdown and handles poweroff/reboot/crash itself', instead: 'the domain XML\'s <on_poweroff>/<on_reboot>/<on_crash> (virDomainDefineXML)' }],
  ['watchdog-set-action', { reason: 'libvirt tracks the watchdog action in the domain XML', instead: 'the domain XML\'s <watchdog action=…> (virDomainDefineXML)' }],
  ['dump-guest-memory', { reason: 'a dump is a job libvirt tracks (and would collide with its own jobs)', instead: 'virDomainCoreDumpWithFormat (virsh dump --memory-only)' }],
  ['snapshot-save', { reason: 'libvirt tracks snapshots and their metadata', instead: 'virDomainSnapshotCreateXML (virsh snapshot-create)' }],
  ['snapshot-load', { reason: 'libvirt tracks snapshots and their metadata', instead: 'virDomainRevertToSnapshot (virsh snapshot-revert)' }],
  ['snapshot-delete', { reason: 'libvirt tracks snapshots and their metadata', instead: 'virDomainSnapshotDelete (virsh snapshot-delete)' }],
  ['eject', { ...BLOCK_GRAPH, instead: 'virDomainUpdateDeviceFlags with the <disk device="cdrom"> without <source> (virsh change-media --eject)' }],
  ['change', { ...BLOCK_GRAPH, instead: 'virDomainUpdateDeviceFlags with a new <source> (virsh change-media)' }],
  ['block_resize', { ...BLOCK_GRAPH, instead: 'virDomainBlockResize (virsh blockresize)' }],
  ['block_set_io_throttle', { ...BLOCK_GRAPH, instead: 'virDomainSetBlockIoTune (virsh blkdeviotune)' }],
  ['block-set-write-threshold', { ...BLOCK_GRAPH, instead: 'virDomainSetBlockThreshold (virsh domblkthreshold)' }],
  ['block-commit', BLOCK_JOBS],
  ['block-stream', BLOCK_JOBS],
  ['drive-mirror', BLOCK_JOBS],
  ['blockdev-mirror', BLOCK_JOBS],
  ['drive-backup', BLOCK_JOBS],
  ['blockdev-backup', BLOCK_JOBS],
  ['transaction', { ...BLOCK_GRAPH, instead: 'virDomainSnapshotCreateXML / virDomainBackupBegin / virDomainCheckpointCreateXML' }],
  ['migrate', MIGRATION],
  ['migrate-incoming', MIGRATION],
  ['migrate_cancel', { ...MIGRATION, instead: 'virDomainAbortJob (virsh domjobabort)' }],
  ['migrate-continue', MIGRATION],
  ['migrate-pause', { ...MIGRATION, instead: 'virDomainAbortJob / virDomainMigrateStartPostCopy' }],
  ['migrate-recover', { ...MIGRATION, instead: 'virDomainMigrate3 with VIR_MIGRATE_POSTCOPY_RESUME' }],
  ['migrate-start-postcopy', { ...MIGRATION, instead: 'virDomainMigrateStartPostCopy (virsh migrate-postcopy)' }],
  ['migrate-set-capabilities', { ...MIGRATION, instead: 'the VIR_MIGRATE_* flags of virDomainMigrate3 (libvirt resets the capabilities it knows at every migration)' }],
  ['x-exit-preconfig', { reason: 'libvirt starts QEMU and decides when it leaves preconfig', instead: 'virDomainCreate (guest.start())' }],
]);

/** Prefix rules for command families; checked after the exact tables. */
const OWNED_PREFIXES: Array<[string, Rule]> = [
  ['blockdev-snapshot', { ...BLOCK_GRAPH, instead: 'virDomainSnapshotCreateXML (virsh snapshot-create --disk-only)' }],
  ['blockdev-', BLOCK_GRAPH],
  ['x-blockdev-', BLOCK_GRAPH],
  ['block-job-', BLOCK_JOBS],
  ['job-', BLOCK_JOBS],
  ['block-dirty-bitmap-', { ...BLOCK_GRAPH, instead: 'virDomainCheckpointCreateXML / virDomainCheckpointDelete' }],
  ['nbd-server-', { ...BLOCK_GRAPH, instead: 'virDomainBackupBegin (pull mode) or virDomainMigrate3 with VIR_MIGRATE_NON_SHARED_DISK' }],
  ['block-export-', { ...BLOCK_GRAPH, instead: 'virDomainBackupBegin (pull mode)' }],
  ['x-block-', BLOCK_GRAPH],
];

/** @internal every libvirt-owned row (exact names and prefixes), for the test that checks what each names. */
export function libvirtOwnedRows(): Array<{ command: string; prefix: boolean } & Rule> {
  return [...[...LIBVIRT_OWNED].map(([command, r]) => ({ command, prefix: false, ...r })), ...OWNED_PREFIXES.map(([command, r]) => ({ command, prefix: true, ...r }))];
}

const NOTES = new Map<string, string>([
  ['set_link', "libvirt's live XML keeps showing the previous <link state>; libvirt's own way is virDomainUpdateDeviceFlags"],
  ['migrate-set-parameters', 'libvirt overwrites max-bandwidth when it starts a migration; set it after the MIGRATION "setup" event'],
  ['qom-set', 'libvirt does not see property changes; do not change properties of devices libvirt configured'],
]);

function assertCommandName(command: unknown): asserts command is string {
  if (typeof command !== 'string' || command === '') {
    throw new InvalidArgumentError(`QMP command name must be a non-empty string, got ${JSON.stringify(command)}`, {
      hint: "pass the command as QEMU names it, e.g. 'query-status'",
    });
  }
}

/** Classifies an HMP line (for `human-monitor-command`): only `info …` and `help` (`?`) are read-only. */
function classifyHmp(args: Record<string, unknown> | undefined): CommandClassification {
  const line = typeof args?.['command-line'] === 'string' ? args['command-line'] : '';
  const word = line.trim().split(/\s+/)[0] ?? '';
  const command = `human-monitor-command: ${word || '(empty)'}`;
  if (word === 'info' || word === 'help' || word === '?') return { command, kind: 'read-only' };
  if (HMP_RUNSTATE.has(word)) return { command, kind: 'runstate', note: 'libvirt follows this through QEMU events' };
  return {
    command,
    kind: 'libvirt-owned',
    reason: 'an HMP line other than `info …` or `help` can change anything, including state libvirt tracks',
    instead: 'the equivalent QMP command (it is classified precisely), or virsh qemu-monitor-command --hmp when you accept the risk',
  };
}

/** How the policy treats a command (and, for `human-monitor-command`, its HMP line). */
export function classifyCommand(command: string, args?: Record<string, unknown>): CommandClassification {
  assertCommandName(command);
  if (command === 'human-monitor-command') return classifyHmp(args);
  if (command.startsWith('query-') || command.startsWith('x-query-') || READ_ONLY.has(command)) return { command, kind: 'read-only' };
  if (RUNSTATE.has(command)) {
    return { command, kind: 'runstate', note: 'libvirt follows this through QEMU events (stop → paused, cont → running)' };
  }
  const rule = LIBVIRT_OWNED.get(command) ?? OWNED_PREFIXES.find(([prefix]) => command.startsWith(prefix))?.[1];
  if (rule) return { command, kind: 'libvirt-owned', reason: rule.reason, instead: withLibqemuCalls(rule.instead) };
  const note = NOTES.get(command) ?? FD_NOTES.get(command);
  return note ? { command, kind: 'untracked', note } : { command, kind: 'untracked' };
}

export interface PolicyOptions {
  /**
   * Commands this client may send even though libvirt owns the state they change, or `'all'` to
   * switch the policy off. HMP lines are named `human-monitor-command` here.
   */
  allow?: readonly string[] | 'all';
}

/** One client's policy: the classification plus its explicit opt-ins. */
export class OwnershipPolicy {
  private readonly allowAll: boolean;
  private readonly allowed: ReadonlySet<string>;
  /** @internal The fd sets and named fds this policy's client created (one policy per client). */
  readonly fdsets = new FdSetOwnership();
  /** The same per caller, for calls that name one (`orderingKey`: each client of a proxy). */
  private readonly fdsetsByCaller = new WeakMap<object, FdSetOwnership>();

  constructor(options: PolicyOptions = {}) {
    const allow = options.allow ?? [];
    if (allow !== 'all' && !(Array.isArray(allow) && allow.every((c) => typeof c === 'string' && c !== ''))) {
      throw new InvalidArgumentError(`policy allow must be 'all' or an array of command names, got ${JSON.stringify(allow)}`, {
        hint: "e.g. guest.qmp({ allow: ['device_add', 'device_del'] })",
      });
    }
    this.allowAll = allow === 'all';
    this.allowed = new Set(allow === 'all' ? [] : allow);
  }

  /**
   * Throws PolicyError when the command may not be sent; returns its classification otherwise. This
   * synchronous check cannot look at QEMU: an add-fd under a new id passes here (`validator()` also
   * refuses it when some fd set already has that id), and a remove-fd refusal lists only your sets.
   */
  check(command: string, args?: Record<string, unknown>, options: { allowUnsafe?: boolean } = {}): CommandClassification {
    const c = classifyCommand(command, args);
    if (this.optedIn(command, options)) return c;
    if (FD_COMMANDS.has(command)) {
      if (this.fdsets.check(command, args) === 'ask-qemu' && command === 'remove-fd') throw this.fdsets.removalRefused(args?.['fdset-id']);
      return c;
    }
    if (c.kind !== 'libvirt-owned') return c;
    throw new PolicyError({ command: c.command, reason: c.reason!, instead: c.instead!, allowName: command });
  }

  /**
   * This policy as a client's validator: refuses before anything is sent. `onPassed` hears of every
   * command that passes and is not read-only (the facade looks for libvirt's taint marks then).
   * `queryFdsets` runs query-fdsets on the same client with the options it is given (the policy knows
   * its own query by them): the fd-set rule then looks at QEMU's fd sets, refusing an add-fd under an
   * id some fd set already has, and its refusals list whose sets there are.
   */
  validator(onPassed?: (c: CommandClassification) => void, fdsets: { queryFdsets?: (options: ExecuteOptions) => Promise<{ 'fdset-id': number }[]> } = {}): CommandValidator<PolicyCallOptions> {
    const ownQuery: ExecuteOptions = {};
    const query = fdsets.queryFdsets ? () => fdsets.queryFdsets!(ownQuery) : undefined;
    /** Calls whose fd command passed by opt-in: they create nothing this client owns. */
    const optedIn = new WeakSet<CommandCall<PolicyCallOptions>>();
    const passed = (c: CommandClassification) => void (c.kind !== 'read-only' && onPassed?.(c));
    const validateOne = (call: CommandCall<PolicyCallOptions>): void | Promise<void> => {
      const { command, args, options } = call;
      const unsafe = { allowUnsafe: options.allowUnsafe === true };
      if (FD_COMMANDS.has(command) && !this.optedIn(command, unsafe)) {
        const c = classifyCommand(command, args);
        const own = this.ownership(options.orderingKey);
        if (own.check(command, args) === 'ask-qemu') return own.checkWithQemu(command, args, query).then(() => passed(c));
        return passed(c);
      }
      if (FD_COMMANDS.has(command)) optedIn.add(call);
      passed(this.check(command, args, unsafe));
    };
    // While an fd-set check asks QEMU, later calls wait behind it: QMP runs a client's commands in the
    // order sent, and a pipelined `add-fd` + `blockdev-add` (e.g. through the proxy) must stay in order.
    let barrier: Promise<void> | undefined;
    const hold = (p: Promise<void>) => {
      const b = p.then(
        () => undefined,
        () => undefined,
      );
      barrier = b;
      // lifted on the next turn, after the calls released by `b` have been handed to the client
      void b.then(() => setImmediate(() => barrier === b && (barrier = undefined)));
    };
    return {
      validate: (call) => {
        if (call.options === ownQuery) return; // the policy's own query-fdsets: read-only, must not wait on itself
        if (barrier) {
          const mine = barrier.then(() => validateOne(call));
          hold(mine);
          return mine;
        }
        const verdict = validateOne(call);
        if (verdict) hold(verdict);
        return verdict;
      },
      checkReply: (call, value) => {
        if (!FD_COMMANDS.has(call.command) || optedIn.has(call)) return;
        return this.ownership(call.options.orderingKey).record(call.command, call.args, value, query);
      },
      // Only fd commands' replies are recorded: a relay passes every other reply on unparsed.
      checksReply: (call) => FD_COMMANDS.has(call.command) && !optedIn.has(call),
    };
  }

  /** Whose fd sets a call deals with: its caller's (a proxy's client, by `orderingKey`), else the client's. */
  private ownership(caller: object | undefined): FdSetOwnership {
    if (caller === undefined) return this.fdsets;
    let own = this.fdsetsByCaller.get(caller);
    if (!own) this.fdsetsByCaller.set(caller, (own = new FdSetOwnership()));
    return own;
  }

  private optedIn(command: string, options: { allowUnsafe?: boolean }): boolean {
    return this.allowAll || options.allowUnsafe === true || this.allowed.has(command);
  }
}

/** The per-call options a client with the ownership policy accepts (next to timeoutMs, signal, oob). */
export interface PolicyCallOptions {
  /**
   * Send this one command even though it changes state libvirt tracks: the policy's per-call opt-in
   * (the client-wide one is `allow`).
   */
  allowUnsafe?: boolean;
}
