/** virsh's --live/--config/--persistent/--current flags, shared by the verbs that change a guest. */
import type { Command } from 'commander';
import type { Guest, GuestChangeOptions } from '../hybrid/index.js';
import { UsageError } from './exit-codes.js';

export interface AffectFlags {
  live?: boolean;
  config?: boolean;
  persistent?: boolean;
  current?: boolean;
}

/** Adds virsh's flags to a verb; `persistent` only where virsh has it (the device verbs). */
export function affectOptions(cmd: Command, o: { persistent: boolean }): Command {
  cmd.option('--live', 'affect the running guest').option('--config', 'affect the persistent definition (next start)');
  if (o.persistent) cmd.option('--persistent', 'affect the definition, and the running guest when it runs');
  return cmd.option('--current', 'affect the running guest when it runs, else the definition (the default)');
}

/** virsh's meaning of the flags; none of them = --current (the running guest, else its definition). */
export async function affect(guest: Guest, o: AffectFlags): Promise<GuestChangeOptions> {
  if (o.current && (o.live || o.config || o.persistent)) throw new UsageError('--current cannot be combined with --live, --config or --persistent');
  const running = await guest.isRunning();
  if (o.persistent) return { live: running, config: true };
  if (o.live || o.config) return { live: Boolean(o.live), config: Boolean(o.config) };
  return { live: running, config: !running };
}
