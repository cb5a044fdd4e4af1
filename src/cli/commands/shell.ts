/** `libqemu shell`: an interactive QMP shell (history, Tab completion from the schema, HMP mode). */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import { runShell } from '../shell/repl.js';

interface ShellCommandOptions {
  hmp?: boolean;
  history: string | false;
  events: boolean;
}

export function defaultHistoryFile(): string {
  return process.env.LIBQEMU_HISTORY || join(homedir(), '.libqemu_history');
}

export const shellCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('shell')
      .description('interactive QMP shell: history, Tab completion of commands and members from the schema, HMP mode')
      .option('-H, --hmp', 'start in HMP (human monitor) mode')
      .option('--history <file>', 'history file (default: $LIBQEMU_HISTORY or ~/.libqemu_history; lines with secrets are not saved)')
      .option('--no-history', 'keep no history file')
      .option('--no-events', 'do not print QMP events as they arrive')
      .addHelpText(
        'after',
        `
Examples:
  libqemu -d web1 shell
  libqemu --socket /tmp/q.sock shell --hmp
  printf 'query-status\\nset_link name=net0 up=false\\n' | libqemu -d web1 shell`,
      )
      .action(
        action(ctx, async (session, cmd: Command) => {
          const opts = cmd.opts<ShellCommandOptions>();
          const client = await session.qmp();
          return runShell({
            client,
            out: session.out,
            input: ctx.stdin,
            hmp: opts.hmp === true,
            historyFile: opts.history === false ? undefined : (opts.history ?? defaultHistoryFile()),
            events: opts.events,
            target: session.describeTarget(),
          });
        }),
      );
  },
};
