/**
 * The contract between QmpClient and whatever carries QMP messages: a socket, an inherited fd, any
 * Duplex, or libvirt's passthrough (virDomainQemuMonitorCommand). A transport moves whole JSON
 * messages; framing, if any, is its own business. It declares what it can do, so the client (and
 * the proxy above it) never has to guess.
 */
export type QmpMessage = Record<string, unknown>;

export interface TransportCapabilities {
  /** Several in-band commands may be in flight at once (the client still caps them, at 8 by default). */
  readonly pipelining: boolean;
  /**
   * Without pipelining: the transport itself keeps the order of commands with the same ordering key and
   * runs different keys side by side (libvirt passthrough), so the client may hand it several at once.
   */
  readonly orderedByKey?: boolean;
  /** Out-of-band execution (`exec-oob`) can be carried. */
  readonly oob: boolean;
  /** File descriptors can be passed with a command (SCM_RIGHTS). */
  readonly fdPassing: boolean;
  /** With fdPassing: the most fds one command may carry (default 253, Linux's SCM_MAX_FD; libvirt's passthrough: 1). */
  readonly maxFds?: number;
  /** Without fdPassing: why this route cannot pass fds and what to use instead (the FdPassingError says both). */
  readonly fdPassingUnavailable?: { readonly reason: string; readonly hint: string };
  /** The largest message accepted from the peer, in bytes. */
  readonly maxMessageBytes: number;
  /**
   * Capabilities are already negotiated by someone else (libvirt's own monitor): the transport
   * synthesises the greeting and the client must not send `qmp_capabilities`.
   */
  readonly preNegotiated: boolean;
}

export interface TransportHandlers {
  /** One complete message from the peer (greeting, reply, or event). */
  message(msg: QmpMessage): void;
  /**
   * Optional, for transports that read text lines: a line offered before it is parsed; true when the
   * client settled a command with it as it is (a relay's reply), and it must not be delivered again.
   */
  takeReply?(line: string): boolean;
  /**
   * The command sent with this id will get no reply from the peer (the connection under it dropped,
   * the route refused it): the client rejects that command with `error` as it is. A transport reports
   * its failures this way, as real error objects, never as made-up QMP error replies.
   */
  failed(id: string, error: Error): void;
  /** The peer sent something that is not a valid message; the stream is still in sync. */
  protocolError(err: Error): void;
  /** The transport is gone for good; called exactly once. */
  closed(reason: Error | undefined): void;
}

/** Per-message options of QmpTransport.send. */
export interface SendOptions {
  /** File descriptors to pass with this message (SCM_RIGHTS); needs `capabilities.fdPassing`. */
  fds?: readonly number[];
  /** Messages with different keys may be processed concurrently (see ExecuteOptions.orderingKey). */
  orderingKey?: object;
}

/**
 * The system calls fd passing needs, plugged into a transport from outside the qmp layer (which does
 * not load native code): libqemu's own is `unixFdPassing` (native/socket.ts).
 */
export interface FdPassing {
  /** One non-blocking sendmsg(2) of `data` with `fds` attached: bytes sent, or the errno. */
  sendWithFds(socketFd: number, data: Uint8Array, fds: readonly number[]): { sent: number } | { errno: number };
}

export interface QmpTransport {
  readonly capabilities: TransportCapabilities;
  /** A short human description for errors and logs, e.g. `unix:/run/x.sock` or `passthrough:guest1`. */
  readonly description: string;
  /** Starts delivering to the handlers. Resolves once the transport is usable. */
  open(handlers: TransportHandlers, signal?: AbortSignal): Promise<void>;
  /** Sends one message (with fds when the transport can pass them). Throws if the transport is closed. */
  send(msg: QmpMessage, options?: SendOptions): void;
  /** Closes; pending deliveries stop; handlers.closed fires once. Idempotent. */
  close(reason?: Error): Promise<void>;
}
