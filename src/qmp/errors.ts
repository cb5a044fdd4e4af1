import { LibqemuError } from '../common/errors.js';

/** QEMU answered a command with `{"error": {"class", "desc"}}`. */
export class QmpCommandError extends LibqemuError {
  constructor(
    /** QMP's error class, e.g. `CommandNotFound`, `GenericError`, `DeviceNotFound`. */
    readonly errorClass: string,
    /** QEMU's human-readable description (do not parse it; match on errorClass). */
    readonly desc: string,
    /** The command that failed. */
    readonly command: string,
    /** The id the client sent it with. */
    readonly id: unknown,
  ) {
    super(`${command} failed: ${errorClass}: ${desc}`, { hint: hintForClass(errorClass, command) });
  }
}

function hintForClass(errorClass: string, command: string): string {
  switch (errorClass) {
    case 'CommandNotFound':
      return `this QEMU does not know "${command}"; check the name, or run query-commands to see what it offers`;
    case 'DeviceNotFound':
      return 'check the device id or node name (query-block, qom-list, query-named-block-nodes)';
    case 'DeviceNotActive':
      return 'the device exists but is not active; check its state first';
    case 'KVMMissingCap':
      return 'the host KVM lacks a capability this command needs';
    default:
      return 'read desc for the reason; check the arguments against query-qmp-schema';
  }
}

/** A command, connect or handshake took longer than its timeout. */
export class QmpTimeoutError extends LibqemuError {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(`${operation} timed out after ${timeoutMs} ms`, {
      hint: 'QEMU may be busy, paused by a debugger, or its monitor held by another client; raise timeoutMs or check the process',
    });
  }
}

/** The connection is gone (or was never made); `reason` says why. */
export class QmpClosedError extends LibqemuError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(`QMP connection closed: ${reason}`, {
      ...(options?.cause === undefined ? {} : { cause: options.cause }),
      hint: options?.hint ?? 'QEMU exited or the socket was closed; reconnect and re-query state (events during the gap are lost)',
    });
  }
}

/** The peer broke the protocol: invalid JSON, a non-object message, a bad greeting. The stream stays in sync. */
export class QmpProtocolError extends LibqemuError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, {
      ...(options?.cause === undefined ? {} : { cause: options.cause }),
      hint: options?.hint ?? 'the peer is not speaking QMP correctly; check that the socket is a QMP monitor (-qmp / mode=control)',
    });
  }
}

/**
 * A single message exceeded the per-message cap. Inbound: it was skipped and the stream stayed in
 * sync; when it was a reply, `id` is its command id (read from the end of the line, where QEMU puts
 * it), and the command's caller gets this error instead of waiting for its timeout. Outbound: the
 * command was refused before a byte of it was sent, so the connection is untouched.
 */
export class MessageTooLargeError extends LibqemuError {
  /** Which way the message was going. */
  readonly direction: 'inbound' | 'outbound';

  constructor(
    readonly limitBytes: number,
    /** Bytes of the message (inbound: received before it was skipped, at least limitBytes + 1). */
    readonly receivedBytes: number,
    /** The id of the reply that was skipped; undefined for an event or when it could not be read. */
    readonly id?: string,
    options?: { direction?: 'inbound' | 'outbound'; command?: string; hint?: string },
  ) {
    const outbound = options?.direction === 'outbound';
    super(
      outbound
        ? `${options?.command ?? 'a command'} was not sent: its message of ${receivedBytes} bytes exceeds the ${limitBytes}-byte outbound limit`
        : `a QMP ${id === undefined ? 'message' : `reply (id ${JSON.stringify(id)})`} of ${receivedBytes} bytes exceeded the ${limitBytes}-byte limit and was skipped`,
      {
        hint:
          options?.hint ??
          (outbound
            ? 'raise maxOutboundBytes when connecting if QEMU should get such large commands (it reads its monitor slowly: a large command holds the socket while it is read)'
            : 'raise maxMessageBytes when connecting if such large replies are expected'),
      },
    );
    this.direction = outbound ? 'outbound' : 'inbound';
  }
}

/** A call was made in a runstate that does not allow it (e.g. execute before open). */
export class QmpStateError extends LibqemuError {}

/** File descriptors were given with a command on a route that cannot carry them, or could not be sent. */
export class FdPassingError extends LibqemuError {}
