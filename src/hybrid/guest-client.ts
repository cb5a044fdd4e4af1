import type { CommandReturn, EventOf, ExecuteOptions, ExecuteRest } from '../qmp/command-map.js';
import type { EventMatch } from '../qmp/client.js';
import { QmpCommandError } from '../qmp/errors.js';
import type { QmpTransport } from '../qmp/transport.js';
import type { QemuCommands, QemuEvents } from '../generated/index.js';
import { QemuClient, type QemuClientOptions } from '../schema/client.js';
import { GuestNotRunningError, MonitorDisconnectedError } from './errors.js';
import { DISCONNECTED_ERROR_CLASS } from './monitor-transport.js';
import { OwnershipPolicy, type CommandClassification } from './policy.js';

declare module '../qmp/command-map.js' {
  interface ExecuteOptions {
    /**
     * Hybrid guests only: send this one command even though it changes state libvirt tracks
     * (the ownership policy's per-call opt-in). Ignored by plain QMP clients.
     */
    allowUnsafe?: boolean;
  }
}

/** QMP error class of synthetic replies when libvirt says the domain is not running (passthrough). */
export const NOT_RUNNING_ERROR_CLASS = 'LibqemuGuestNotRunning';

export type QmpRoute = 'monitor' | 'passthrough';

export interface GuestQmpClientOptions extends QemuClientOptions {
  /** The guest's name, for errors. */
  guest: string;
  route: QmpRoute;
  policy: OwnershipPolicy;
  /** Called once per guest when a command passes that libvirt may complain about (taint check). */
  onCommandPassed?: (c: CommandClassification) => void;
}

/**
 * The QMP client `guest.qmp()` returns: a QemuClient (typed commands, schema validation, `commands.*`)
 * whose every entry point (execute, hmp, executeAndWait, commands.*) first asks the ownership
 * policy, and whose route-specific failures surface as the facade's typed errors.
 */
export class GuestQmpClient extends QemuClient {
  readonly route: QmpRoute;
  readonly guestName: string;
  private readonly policy: OwnershipPolicy;
  private readonly onCommandPassed: ((c: CommandClassification) => void) | undefined;

  constructor(transport: QmpTransport, options: GuestQmpClientOptions) {
    super(transport, options);
    this.route = options.route;
    this.guestName = options.guest;
    this.policy = options.policy;
    this.onCommandPassed = options.onCommandPassed;
  }

  override execute<K extends string>(command: K, ...rest: ExecuteRest<QemuCommands, K>): Promise<CommandReturn<QemuCommands, K>> {
    const [args, options] = rest as unknown as [Record<string, unknown> | undefined, ExecuteOptions | undefined];
    try {
      this.admit(command, args, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.mapErrors(super.execute(command, ...stripOptions(rest)), command);
  }

  override hmp(commandLine: string, options: ExecuteOptions = {}): Promise<string> {
    try {
      this.admit('human-monitor-command', { 'command-line': commandLine }, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const { allowUnsafe: _ignored, ...rest } = options;
    return this.mapErrors(super.hmp(commandLine, rest), 'human-monitor-command');
  }

  override executeAndWait<K extends string, N extends string>(
    command: K,
    args: ExecuteRest<QemuCommands, K>[0],
    eventMatch: EventMatch<N, EventOf<QemuEvents, N>>,
    options: ExecuteOptions = {},
  ): Promise<{ result: CommandReturn<QemuCommands, K>; event: EventOf<QemuEvents, N> }> {
    try {
      this.admit(command, args as Record<string, unknown> | undefined, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const { allowUnsafe: _ignored, ...rest } = options;
    return this.mapErrors(super.executeAndWait(command, args, eventMatch, rest), command);
  }

  private admit(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions | undefined): void {
    const c = this.policy.check(command, args, { allowUnsafe: options?.allowUnsafe === true });
    if (c.kind !== 'read-only') this.onCommandPassed?.(c);
  }

  private mapErrors<T>(p: Promise<T>, command: string): Promise<T> {
    return p.catch((err: unknown) => {
      if (err instanceof QmpCommandError) {
        if (err.errorClass === DISCONNECTED_ERROR_CLASS) throw new MonitorDisconnectedError(this.guestName, command, err);
        if (err.errorClass === NOT_RUNNING_ERROR_CLASS) throw new GuestNotRunningError(this.guestName, 'not running', err);
      }
      throw err;
    });
  }
}

/** Drops our `allowUnsafe` so the QMP layer never sees it. */
function stripOptions<R extends unknown[]>(rest: R): R {
  const options = rest[1] as ExecuteOptions | undefined;
  if (!options || !('allowUnsafe' in options)) return rest;
  const { allowUnsafe: _ignored, ...clean } = options;
  return [rest[0], clean] as unknown as R;
}
