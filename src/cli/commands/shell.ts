/** `libqemu shell`: an interactive QMP shell (history, Tab completion from the schema, HMP mode). */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import type { WireTrace } from '../shell/trace.js';

interface ShellCommandOptions {
  hmp?: boolean;
  history: string | false;
  events: boolean;
  verbose?: boolean;
  log?: string;
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
      .option('-v, --verbose', 'print every command as it is sent (JSON), as qmp-shell -v does')
      .option('-l, --log <file>', 'append every message sent and received to FILE as JSON lines (secrets redacted; created 0600)')
      .addHelpText(
        'after',
        `
Examples:
  libqemu -d web1 shell
  libqemu --socket /tmp/q.sock shell --hmp
  libqemu -s 127.0.0.1:4444 shell -v -l qmp.log
  printf 'query-status\\nset_link name=net0 up=false\\n' | libqemu -d web1 shell

A piped shell runs every line and exits with the code of the first line that failed (0 if none did).
qmp-shell's transaction syntax works as there:
  transaction(
  block-dirty-bitmap-add node=drive0 name=bm0
  block-dirty-bitmap-clear node=drive0 name=bm1 )`,
      )
      .action(
        action(ctx, async (session, cmd: Command) => {
          const opts = cmd.opts<ShellCommandOptions>();
          const [{ runShell }, { WireTrace }] = await Promise.all([import('../shell/repl.js'), import('../shell/trace.js')]);
          const trace: WireTrace | undefined = opts.verbose || opts.log ? new WireTrace({ out: session.out, verbose: opts.verbose === true, logFile: opts.log }) : undefined;
          try {
            const client = await session.qmp(trace ? { onTraffic: trace.onTraffic } : {});
            return await runShell({
              client,
              out: session.out,
              input: ctx.stdin,
              hmp: opts.hmp === true,
              historyFile: opts.history === false ? undefined : (opts.history ?? defaultHistoryFile()),
              events: opts.events,
              target: session.describeTarget(),
              verbose: opts.verbose === true,
              ...(trace ? { trace } : {}),
            });
          } finally {
            trace?.close();
          }
        }),
      );
  },
};
