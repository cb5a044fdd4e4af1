/**
 * guest.shutdown() and guest.reboot() with libvirt's modes (ACPI power button or guest agent), and a
 * shutdown that waits until the guest is really off.
 */
import { InvalidArgumentError, LibqemuError } from '../common/errors.js';
import { LibvirtError } from '../libvirt/errors.js';
import { AgentUnavailableError } from '../agent/index.js';
import { agentErrorFromLibvirt } from './guest-agent.js';

/** What shutdown/reboot need of a guest: its name and the libvirt calls (a Domain is one). */
export interface PowerTarget {
  name: string;
  domain: {
    shutdown(options: { flags: number }): Promise<void>;
    reboot(options: { flags: number }): Promise<void>;
    state(): Promise<{ state: string }>;
  };
}

/** 'default': libvirt picks; 'acpi': the ACPI power button; 'agent': guest-shutdown through the guest agent. */
export type PowerMode = 'default' | 'acpi' | 'agent';

export interface GuestShutdownOptions {
  mode?: PowerMode;
  /** Resolve only once the guest is off (shut off, or gone for a transient guest). */
  wait?: boolean;
  /** With `wait`: how long the guest may take (default 60 000 ms); then GuestShutdownTimeoutError. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface GuestRebootOptions {
  mode?: PowerMode;
}

/** virDomainShutdownFlagValues and virDomainRebootFlagValues share these values. */
const MODE_FLAGS: Record<PowerMode, number> = { default: 0, acpi: 1, agent: 2 };

/** The guest was asked to shut down and was still not off when the wait ended. */
export class GuestShutdownTimeoutError extends LibqemuError {
  readonly guest: string;
  readonly state: string;
  readonly timeoutMs: number;

  constructor(options: { guest: string; state: string; timeoutMs: number; mode: PowerMode }) {
    super(`guest '${options.guest}' was asked to shut down (${options.mode}) and is still ${options.state} after ${options.timeoutMs} ms`, {
      hint:
        options.mode === 'agent'
          ? 'is the guest agent running and allowed to shut down? guest.destroy() stops it at once'
          : "an OS that ignores the ACPI power button (or a domain without <features><acpi/>) never goes off: try mode 'agent', or guest.destroy()",
    });
    this.guest = options.guest;
    this.state = options.state;
    this.timeoutMs = options.timeoutMs;
  }
}

function modeOf(where: string, mode: unknown): PowerMode {
  if (mode === undefined) return 'default';
  if (mode !== 'default' && mode !== 'acpi' && mode !== 'agent') {
    throw new InvalidArgumentError(`${where}: mode must be 'default', 'acpi' or 'agent', got ${JSON.stringify(mode)}`, { hint: "'acpi' presses the power button, 'agent' asks the guest agent" });
  }
  return mode;
}

/** Agent-mode failures are the agent's (not connected, not configured): report them with the agent's errors. */
function translate(err: unknown, mode: PowerMode, command: string): unknown {
  return mode === 'agent' ? agentErrorFromLibvirt(err, command, 0) : err;
}

export async function shutdownGuest(guest: PowerTarget, options: GuestShutdownOptions = {}): Promise<void> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('guest.shutdown: options must be an object');
  const mode = modeOf('guest.shutdown', options.mode);
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1) throw new InvalidArgumentError(`guest.shutdown: timeoutMs must be a positive number, got ${String(options.timeoutMs)}`);
  options.signal?.throwIfAborted();
  try {
    await guest.domain.shutdown({ flags: MODE_FLAGS[mode] });
  } catch (err) {
    const e = translate(err, mode, 'guest-shutdown');
    // The agent's socket closing during guest-shutdown is what a guest going down looks like when the
    // EOF beats QEMU's SHUTDOWN event to libvirt: with `wait`, the guest's state says whether it went.
    if (!(options.wait && e instanceof AgentUnavailableError && e.reason === 'disconnected')) throw e;
  }
  if (!options.wait) return;
  const deadline = performance.now() + timeoutMs;
  let state = 'running';
  for (;;) {
    try {
      state = (await guest.domain.state()).state;
    } catch (err) {
      if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN') return; // a transient guest is gone once off
      throw err;
    }
    if (state === 'shutoff') return;
    if (performance.now() >= deadline) throw new GuestShutdownTimeoutError({ guest: guest.name, state, timeoutMs, mode });
    options.signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - performance.now()))));
  }
}

export async function rebootGuest(guest: PowerTarget, options: GuestRebootOptions = {}): Promise<void> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('guest.reboot: options must be an object');
  const mode = modeOf('guest.reboot', options.mode);
  try {
    await guest.domain.reboot({ flags: MODE_FLAGS[mode] });
  } catch (err) {
    throw translate(err, mode, 'guest-shutdown');
  }
}
