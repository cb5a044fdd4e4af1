import { LibqemuError } from '../common/errors.js';

/** Every error of the guest agent client derives from this. */
export class AgentError extends LibqemuError {}

/** Why the agent cannot be reached. */
export type AgentUnavailableReason =
  /** The domain has no org.qemu.guest_agent.0 channel. */
  | 'not-configured'
  /** The channel exists but no agent has opened it (not started yet, stopped, or the guest is booting). */
  | 'not-connected'
  /** The guest (its QEMU) is not running. */
  | 'not-running'
  /** The agent went away while a command was in flight (it exited, the guest rebooted). */
  | 'disconnected'
  /** The agent's reply stream is out of sync (libvirt resynchronises with guest-sync on the next call). */
  | 'unsynced'
  /** The agent did not answer in time (see AgentTimeoutError). */
  | 'timeout';

/** The agent is not connected or not responding (libvirt's VIR_ERR_AGENT_UNRESPONSIVE and friends). */
export class AgentUnavailableError extends AgentError {
  readonly reason: AgentUnavailableReason;
  /** The agent command that could not be run. */
  readonly command: string;

  constructor(options: { command: string; reason: AgentUnavailableReason; detail: string; cause?: unknown; hint?: string }) {
    super(`guest agent unavailable for '${options.command}' (${options.reason}): ${options.detail}`, {
      cause: options.cause,
      hint: options.hint ?? HINTS[options.reason],
    });
    this.reason = options.reason;
    this.command = options.command;
  }
}

const HINTS: Record<AgentUnavailableReason, string> = {
  'not-configured': "add <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel> to the domain XML",
  'not-connected': 'start qemu-ga in the guest (or wait for it: agent.waitReady()); an agent-lifecycle "connected" event says when it is there',
  'not-running': 'start the guest first',
  disconnected: 'the agent exited or the guest rebooted mid-command: wait for it (agent.waitReady()) and retry if the command is safe to repeat',
  unsynced: 'retry: the next command resynchronises the channel',
  timeout: 'the agent is busy, hung or gone: raise timeoutMs, or check qemu-ga in the guest',
};

/** The agent did not answer within the call's timeout (a kind of unavailability: reason 'timeout'). */
export class AgentTimeoutError extends AgentUnavailableError {
  readonly timeoutMs: number;

  constructor(options: { command: string; timeoutMs: number; detail?: string; cause?: unknown }) {
    super({ command: options.command, reason: 'timeout', detail: options.detail ?? `no answer within ${options.timeoutMs} ms`, cause: options.cause });
    this.timeoutMs = options.timeoutMs;
  }
}

/** This agent does not offer the command: unknown to its version, or disabled by the guest's admin. */
export class AgentCommandNotSupportedError extends AgentError {
  readonly command: string;
  /** 'unknown' = the agent does not know it; 'disabled' = known but switched off (qemu-ga -b, or not for this OS). */
  readonly why: 'unknown' | 'disabled';

  constructor(options: { command: string; why: 'unknown' | 'disabled'; agentVersion?: string; cause?: unknown }) {
    const version = options.agentVersion ? ` (qemu-ga ${options.agentVersion})` : '';
    super(`the guest agent${version} does not support '${options.command}': ${options.why === 'unknown' ? 'unknown command' : 'disabled in this guest'}`, {
      cause: options.cause,
      hint: "check agent.supports(name) (from guest-info's supported_commands) before calling, or update qemu-ga in the guest",
    });
    this.command = options.command;
    this.why = options.why;
  }
}

/** The agent ran the command and reported a failure (e.g. a file that does not exist). */
export class AgentCommandError extends AgentError {
  readonly command: string;
  /** The agent's description of the failure. */
  readonly desc: string;
  /** The agent's error class when the transport knows it (libvirt does not pass it on). */
  readonly errorClass: string | undefined;

  constructor(options: { command: string; desc: string; errorClass?: string; cause?: unknown }) {
    super(`guest agent command '${options.command}' failed: ${options.desc}`, {
      cause: options.cause,
      hint: 'read desc for the reason (it comes from inside the guest); check the arguments against the qemu-ga protocol',
    });
    this.command = options.command;
    this.desc = options.desc;
    this.errorClass = options.errorClass;
  }
}

/** The agent answered with something the protocol does not allow for this command. */
export class AgentProtocolError extends AgentError {
  constructor(options: { command: string; detail: string }) {
    super(`unexpected reply to guest agent command '${options.command}': ${options.detail}`, {
      hint: 'the guest agent may be a different or much older implementation; use agent.command() for raw replies',
    });
  }
}
