/**
 * Exit codes of `libqemu`, one per kind of failure, so scripts can tell them apart (documented in the
 * README and in `libqemu --help`).
 */
import { CommanderError } from 'commander';
import { InvalidArgumentError } from '../common/errors.js';
import { DomainXmlError, MonitorDirError } from '../domain/errors.js';
import {
  GuestNotFoundError,
  GuestNotRunningError,
  MonitorDisconnectedError,
  MonitorUnavailableError,
  PolicyError,
} from '../hybrid/errors.js';
import { LibvirtError, LibvirtTimeoutError } from '../libvirt/errors.js';
import { MigrationError } from '../migration/errors.js';
import { ProxyError, POLICY_ERROR_CLASS } from '../proxy/errors.js';
import { QmpClosedError, QmpCommandError, QmpProtocolError, QmpTimeoutError } from '../qmp/errors.js';
import { SchemaError } from '../schema/errors.js';

export const ExitCode = {
  ok: 0,
  /** Wrong command line: unknown option, missing argument, bad value. */
  usage: 1,
  /** QEMU answered the command with an error. */
  qmpError: 2,
  /** libvirt failed (no such guest, not running, daemon unreachable, …). */
  libvirt: 3,
  /** The ownership policy refused the command (libvirt owns that state). */
  policy: 4,
  /** The arguments do not match the schema (caught before sending), or the schema could not be read. */
  schema: 5,
  /** Timeout, or the QMP connection could not be made or was lost. */
  connection: 6,
  /** Anything else (a bug: please report it). */
  internal: 7,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_HELP = `Exit codes:
  0  success
  1  usage error (bad option, argument or value)
  2  QEMU answered with an error
  3  libvirt error (no such guest, not running, daemon unreachable, migration failed)
  4  refused by the ownership policy (use the libvirt API it names, or --allow)
  5  schema validation error (caught before sending) or unreadable schema
  6  timeout or QMP connection failure
  7  internal error`;

/** A command-line mistake found by our own checks (not commander's). */
export class UsageError extends InvalidArgumentError {}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  if (err instanceof PolicyError) return ExitCode.policy;
  if (err instanceof SchemaError) return ExitCode.schema;
  if (err instanceof QmpCommandError) return err.errorClass === POLICY_ERROR_CLASS ? ExitCode.policy : ExitCode.qmpError;
  if (err instanceof LibvirtTimeoutError) return ExitCode.connection;
  // a migration runs as a libvirt job, whichever side failed
  if (err instanceof GuestNotFoundError || err instanceof GuestNotRunningError || err instanceof LibvirtError || err instanceof DomainXmlError || err instanceof MigrationError) {
    return ExitCode.libvirt;
  }
  if (err instanceof QmpTimeoutError || err instanceof QmpClosedError || err instanceof QmpProtocolError) return ExitCode.connection;
  if (err instanceof MonitorUnavailableError || err instanceof MonitorDisconnectedError || err instanceof MonitorDirError) return ExitCode.connection;
  // a proxy that cannot listen: the --listen path is the problem
  if (err instanceof InvalidArgumentError || err instanceof ProxyError) return ExitCode.usage;
  return ExitCode.internal;
}
