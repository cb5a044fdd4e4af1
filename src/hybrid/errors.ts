import { LibqemuError } from '../common/errors.js';

/**
 * The errors the hybrid facade adds. Each says what was wrong and, in `hint`, what to do about it;
 * lower layers' errors (LibvirtError, QmpCommandError, …) pass through unchanged as `cause`.
 */

/** A QMP command was refused because it changes state libvirt tracks (ownership policy). */
export class PolicyError extends LibqemuError {
  /** The refused QMP command (or `human-monitor-command: <word>` for HMP lines). */
  readonly command: string;
  /** Why it is refused: what libvirt would lose track of. */
  readonly reason: string;
  /** The libvirt API (and the libqemu call, when there is one) to use instead. */
  readonly instead: string;
  /** The name to list in `allow` to opt in (differs from `command` for HMP lines). */
  readonly allowName: string;
  /**
   * For fd-set refusals (add-fd, remove-fd, closefd): the fd sets this client created, and the others
   * QEMU lists (libvirt's, or another client's). `instead` then says what is allowed.
   */
  readonly fdsets: { readonly caller: readonly number[]; readonly others: readonly number[] } | undefined;

  constructor(options: { command: string; reason: string; instead: string; allowName?: string; fdsets?: { caller: readonly number[]; others: readonly number[] } }) {
    const { command, reason, instead, fdsets } = options;
    const allowName = options.allowName ?? command;
    super(`QMP command '${command}' refused by the ownership policy: ${reason}; ${fdsets ? 'allowed' : "libvirt's way"}: ${instead}`, {
      // the message already names libvirt's way: the hint only says how to opt in
      hint:
        `to send it anyway, accepting that libvirt may lose track of this guest's state: ` +
        `guest.qmp({ allow: ['${allowName}'] }) for the client, or { allowUnsafe: true } on this call`,
    });
    this.command = command;
    this.reason = reason;
    this.instead = instead;
    this.allowName = allowName;
    this.fdsets = fdsets;
  }
}

/** No domain with that name or UUID on this connection. */
export class GuestNotFoundError extends LibqemuError {
  readonly nameOrUuid: string;
  readonly uri: string;

  constructor(options: { nameOrUuid: string; uri: string; cause?: unknown }) {
    super(`no guest named or with UUID '${options.nameOrUuid}' on ${options.uri}`, {
      cause: options.cause,
      hint: 'check the name with hv.guests() (or `virsh -c URI list --all`); names are case-sensitive',
    });
    this.nameOrUuid = options.nameOrUuid;
    this.uri = options.uri;
  }
}

/** The operation needs a running QEMU, and the guest is not running. */
export class GuestNotRunningError extends LibqemuError {
  readonly guest: string;
  /** libvirt's state name (e.g. `shutoff`), or `not running` when only that is known. */
  readonly state: string;

  constructor(options: { guest: string; state: string; cause?: unknown }) {
    super(`guest '${options.guest}' is not running (state: ${options.state}), so it has no QEMU to talk QMP to`, {
      cause: options.cause,
      hint: 'start it first (await guest.start()), or wait for its "started" lifecycle event',
    });
    this.guest = options.guest;
    this.state = options.state;
  }
}

/** Why a second monitor cannot be used. */
export type MonitorUnavailableReason =
  | 'no-monitor' // the domain XML has none
  | 'remote' // the daemon is on another host
  | 'missing' // the socket file does not exist
  | 'stale' // a file nobody listens on (QEMU was killed)
  | 'permission' // this user may not open it
  | 'busy' // no greeting: another client holds the single-client monitor
  | 'handshake'; // QEMU closed it or refused qmp_capabilities

export interface MonitorUnavailableOptions {
  guest: string;
  /** The socket, when known. */
  socketPath?: string | undefined;
  /** What went wrong, for the message. */
  message: string;
  /** What to do about it. */
  hint: string;
  /** Default 'handshake'. */
  reason?: MonitorUnavailableReason;
  cause?: unknown;
}

/** The guest's second QMP monitor cannot be used from here; `reason` says why. */
export class MonitorUnavailableError extends LibqemuError {
  readonly guest: string;
  readonly socketPath: string | undefined;
  readonly reason: MonitorUnavailableReason;

  constructor(options: MonitorUnavailableOptions) {
    const { guest, socketPath } = options;
    super(`QMP monitor of guest '${guest}'${socketPath ? ` (${socketPath})` : ''}: ${options.message}`, { cause: options.cause, hint: options.hint });
    this.guest = guest;
    this.socketPath = socketPath;
    this.reason = options.reason ?? 'handshake';
  }
}

/** The guest's monitor connection dropped (QEMU stopped or was killed) while a command was waiting, or was down when it was sent. */
export class MonitorDisconnectedError extends LibqemuError {
  readonly guest: string;
  readonly command: string | undefined;

  constructor(options: { guest: string; command?: string | undefined; cause?: unknown }) {
    const { guest, command } = options;
    super(
      `the QMP monitor of guest '${guest}' went away${command ? ` before '${command}' got its reply` : ''} ` +
        '(QEMU stopped, crashed or was killed)',
      {
        cause: options.cause,
        hint: 'the command may or may not have run; check the guest state (guest.state()) and retry once it runs again',
      },
    );
    this.guest = guest;
    this.command = command;
  }
}
