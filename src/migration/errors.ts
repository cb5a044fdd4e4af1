import { LibqemuError } from '../common/errors.js';
import { virErrorNumber } from '../generated/libvirt/enums.js';

/**
 * Why a migration failed, as far as the caller can act on it. Whatever the reason, libvirt keeps the
 * guest running on the source (the engine checks and says so in `guestOnSource`).
 */
export type MigrationFailureReason =
  /** The destination libvirtd could not be reached (not running, wrong socket or URI, refused). */
  | 'destination-unreachable'
  /** The destination could not listen for the migration stream: the port is taken. */
  | 'port-busy'
  /** Something asked for is not supported by libvirt or the running QEMU (flag, parameter, post-copy…). */
  | 'unsupported'
  /** Both daemons report the same host UUID: libvirt refuses to migrate to "the same host". */
  | 'same-host'
  /** Cancelled by `abort()`, by the AbortSignal, or by the watchdog's abort action. */
  | 'aborted'
  /** The watchdog's deadline passed and its action could not finish the migration. */
  | 'deadline'
  /** Anything else: the data stream broke, QEMU failed, the source daemon went away… */
  | 'failed';

/** The fields of a libvirt error the classification needs (LibvirtError has them). */
export interface LibvirtErrorLike {
  code?: number;
  domain?: number;
  message: string;
}

export class MigrationError extends LibqemuError {
  constructor(
    message: string,
    readonly reason: MigrationFailureReason,
    options: {
      cause?: unknown;
      hint?: string;
      /** Whether the guest was seen running (or paused by us and resumed) on the source afterwards. */
      guestOnSource?: boolean;
    } = {},
  ) {
    super(message, { cause: options.cause, hint: options.hint ?? HINTS[reason] });
    this.guestOnSource = options.guestOnSource;
  }
  guestOnSource: boolean | undefined;
}

const HINTS: Record<MigrationFailureReason, string> = {
  'destination-unreachable':
    'check that the destination libvirtd runs and that its URI (socket path, host, port) is right; the guest still runs on the source',
  'port-busy':
    'free the port, pick another one in migrationUri (tcp://127.0.0.1:PORT), use a unix:// migration URI, or migrate tunnelled',
  unsupported: 'drop the option or parameter named in the message, or upgrade libvirt/QEMU on both sides',
  'same-host': 'give each libvirtd its own host_uuid in libvirtd.conf',
  aborted: 'nothing to do: the migration was cancelled and the guest keeps running on the source',
  deadline: 'give the migration more bandwidth or time, or choose a watchdog action that forces it to finish (pause, raise-downtime)',
  failed: 'see the message and the libvirtd logs of both daemons; the guest keeps running on the source',
};

const unreachablePatterns = [
  /failed to connect (socket|to remote libvirt uri)/i,
  /unable to connect to server/i,
  /connection refused/i,
  /no such file or directory/i,
  /cannot (recv|send) data/i,
  /cannot connect/i,
  /no route to host/i,
  /name or service not known/i,
  /host .* not found/i,
];
const portBusyPatterns = [/address already in use/i, /failed to find an available port/i, /unable to find an unused port/i];
const unsupportedPatterns = [/not supported/i, /unsupported/i, /is not a valid (migration )?parameter/i, /invalid parameter/i, /parameter '[^']+' (is )?unexpected/i];

/**
 * Turns a libvirt (or QMP) failure of a migration into a MigrationError with a reason, from the error
 * codes and messages libvirt 9.0 gives (some codes are reused, so a few need the message text).
 */
export function classifyMigrationFailure(err: LibvirtErrorLike, context: { destination: string }): MigrationError {
  const msg = err.message;
  const reason = reasonFor(err);
  const what: Record<MigrationFailureReason, string> = {
    'destination-unreachable': `migration to ${context.destination} failed: the destination is unreachable`,
    'port-busy': `migration to ${context.destination} failed: the destination could not listen for the migration stream (port busy)`,
    unsupported: `migration to ${context.destination} failed: something requested is not supported`,
    'same-host': `migration to ${context.destination} refused: both libvirtds have the same host UUID`,
    aborted: `migration to ${context.destination} was aborted`,
    deadline: `migration to ${context.destination} did not finish before the watchdog's deadline`,
    failed: `migration to ${context.destination} failed`,
  };
  return new MigrationError(`${what[reason]}: ${msg}`, reason, { cause: err });
}

function reasonFor(err: LibvirtErrorLike): MigrationFailureReason {
  const msg = err.message;
  if (err.code === virErrorNumber.VIR_ERR_OPERATION_ABORTED || /canceled by client|cancelled by client/i.test(msg)) return 'aborted';
  if (/migrate guest to the same host/i.test(msg)) return 'same-host';
  // Port checks come first: "Address already in use" also contains generic failure words.
  if (portBusyPatterns.some((p) => p.test(msg))) return 'port-busy';
  if (
    err.code === virErrorNumber.VIR_ERR_NO_SUPPORT ||
    err.code === virErrorNumber.VIR_ERR_ARGUMENT_UNSUPPORTED ||
    err.code === virErrorNumber.VIR_ERR_OPERATION_UNSUPPORTED ||
    err.code === virErrorNumber.VIR_ERR_CONFIG_UNSUPPORTED ||
    unsupportedPatterns.some((p) => p.test(msg))
  ) {
    return 'unsupported';
  }
  if (err.code === virErrorNumber.VIR_ERR_NO_CONNECT || err.code === virErrorNumber.VIR_ERR_AUTH_FAILED || unreachablePatterns.some((p) => p.test(msg))) {
    return 'destination-unreachable';
  }
  return 'failed';
}
