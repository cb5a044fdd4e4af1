/**
 * How GuestAgent reaches the agent. A transport sends one command and settles with the agent's
 * `return` value. Failures that are about the agent (not reachable, no answer in time, command unknown
 * or refused) it reports with the errors of ./errors.ts, so callers handle every transport alike; its
 * own failures (e.g. the libvirt connection dropped) keep their own error types. The libvirt one
 * (src/hybrid/guest-agent.ts) goes through virDomainQemuAgentCommand; another could speak to qemu-ga's
 * socket directly.
 */

export interface AgentRequest {
  /** The agent command, e.g. 'guest-ping'. */
  execute: string;
  arguments?: Record<string, unknown>;
}

export interface AgentSendOptions {
  /** How long the agent may take to answer (ms). On expiry: AgentTimeoutError. */
  timeoutMs: number;
  /** Abandons the wait (the command may still run in the guest). */
  signal?: AbortSignal;
  /**
   * The command never answers on success (guest-shutdown, guest-suspend-*): settle once it is handed to
   * the agent, with undefined.
   */
  noReply?: boolean;
}

export interface AgentTransport {
  /** Sends one command; resolves with the reply's `return` value (undefined for noReply). */
  send(request: AgentRequest, options: AgentSendOptions): Promise<unknown>;
  /** A short description for messages, e.g. "libvirt agent channel of 'web1'". */
  readonly description: string;
  /** Releases what the transport holds (a connection); later sends fail. */
  close?(): Promise<void>;
}
