import { LibqemuError } from '../common/errors.js';

/**
 * The errors the hybrid facade adds. Each says what was wrong and, in `hint`, what to do about it;
 * lower layers' errors (LibvirtError, QmpCommandError, …) pass through unchanged as `cause`.
 */

/** A QMP command was refused because it changes state libvirt tracks (ownership policy). */
export class PolicyError extends LibqemuError {
  constructor(
    /** The refused QMP command (or `human-monitor-command: <word>` for HMP lines). */
    readonly command: string,
    /** Why it is refused: what libvirt would lose track of. */
    readonly reason: string,
    /** The libvirt API (and the libqemu call, when there is one) to use instead. */
    readonly instead: string,
    /** The name to list in `allow` to opt in (differs from `command` for HMP lines). */
    readonly allowName: string = command,
  ) {
    super(`QMP command '${command}' refused by the ownership policy: ${reason}; libvirt's way: ${instead}`, {
      hint:
        `use ${instead} instead; or, if you accept that libvirt may lose track of this guest's state, opt in ` +
        `explicitly: guest.qmp({ allow: ['${allowName}'] }) for the client or { allowUnsafe: true } on this call`,
    });
  }
}

/** No domain with that name or UUID on this connection. */
export class GuestNotFoundError extends LibqemuError {
  constructor(
    readonly nameOrUuid: string,
    readonly uri: string,
    cause?: unknown,
  ) {
    super(`no guest named or with UUID '${nameOrUuid}' on ${uri}`, {
      cause,
      hint: 'check the name with hv.guests() (or `virsh -c URI list --all`); names are case-sensitive',
    });
  }
}

/** The operation needs a running QEMU, and the guest is not running. */
export class GuestNotRunningError extends LibqemuError {
  constructor(
    readonly guest: string,
    readonly state: string,
    cause?: unknown,
  ) {
    super(`guest '${guest}' is not running (state: ${state}), so it has no QEMU to talk QMP to`, {
      cause,
      hint: 'start it first (await guest.start()), or wait for its "started" lifecycle event',
    });
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

/** The guest's second QMP monitor cannot be used from here; `reason` says why. */
export class MonitorUnavailableError extends LibqemuError {
  constructor(
    readonly guest: string,
    readonly socketPath: string | undefined,
    message: string,
    hint: string,
    cause?: unknown,
    readonly reason: MonitorUnavailableReason = 'handshake',
  ) {
    super(`QMP monitor of guest '${guest}'${socketPath ? ` (${socketPath})` : ''}: ${message}`, { cause, hint });
  }
}

/** The guest's monitor connection dropped (QEMU stopped or was killed) while a command was waiting. */
export class MonitorDisconnectedError extends LibqemuError {
  constructor(
    readonly guest: string,
    readonly command: string | undefined,
    cause?: unknown,
  ) {
    super(
      `the QMP monitor of guest '${guest}' went away${command ? ` before '${command}' got its reply` : ''} ` +
        '(QEMU stopped, crashed or was killed)',
      {
        cause,
        hint: 'the command may or may not have run; check the guest state (guest.state()) and retry once it runs again',
      },
    );
  }
}
