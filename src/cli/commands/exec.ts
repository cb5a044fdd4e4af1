/** `libqemu exec COMMAND [ARGS…]`: one QMP (or --hmp) command; arguments as JSON or schema-typed key=value pairs. */
import type { Command } from 'commander';
import { parseCommandArgs } from '../args.js';
import { UsageError } from '../exit-codes.js';
import { action, type CliCommandModule } from '../command.js';
import type { GlobalOptions } from '../session.js';

/**
 * `exec GUEST COMMAND [ARGS…]` like the lifecycle verbs, or `exec COMMAND [ARGS…]` with -d/-s. With
 * no -d/-s, the first word is the guest when a command follows it (an argument looks like k=v or {…}).
 */
export function positionals(
  options: Pick<GlobalOptions, 'domain' | 'socket'>,
  first: string | undefined,
  second: string | undefined,
  rest: string[],
): { guest: string | undefined; command: string; words: string[] } {
  const isArgument = (w: string) => w.includes('=') || w.trimStart().startsWith('{');
  if (first === undefined) throw new UsageError('which QMP command?', { hint: 'e.g. libqemu exec web1 query-status' });
  if (second === undefined) return { guest: undefined, command: first, words: [] };
  if (!options.domain && !options.socket && !isArgument(second)) return { guest: first, command: second, words: rest };
  return { guest: undefined, command: first, words: [second, ...rest] };
}

interface ExecOptions {
  hmp?: boolean;
  validate: boolean;
}

export const execCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('exec')
      .description('run one QMP command and print its result (arguments are checked against the schema before sending)')
      .usage('[options] [GUEST] COMMAND [ARGS...]')
      .argument('<command>', 'QMP command, e.g. query-status (with --hmp: the HMP command line); without -d/-s, GUEST COMMAND (libqemu exec web1 query-status)')
      .argument('[args...]', 'arguments: key=value pairs typed by the schema (a.b=1 for nested members), or one JSON object')
      .option('--hmp', 'run an HMP command line through human-monitor-command and print its text')
      .option('--no-validate', 'send without checking against the schema first (QEMU still checks)')
      .addHelpText(
        'after',
        `
Examples:
  libqemu exec web1 query-status
  libqemu --socket /tmp/q.sock exec query-status
  libqemu -s 127.0.0.1:4444 exec query-version
  libqemu -d web1 exec set_link name=net0 up=false
  libqemu -d web1 exec qom-get '{"path": "/machine", "property": "type"}'
  libqemu -d web1 --json exec query-cpus-fast
  libqemu -d web1 exec --hmp info status`,
      )
      .action(
        action(ctx, async (session, cmd: Command, first: string, [second, ...rest]: string[]) => {
          const opts = cmd.opts<ExecOptions>();
          const { guest, command, words } = positionals(session.options, first, second, rest);
          const client = await session.qmp({ validate: opts.validate, ...(guest ? { guest } : {}) });
          if (opts.hmp) {
            const text = await client.hmp([command, ...words].join(' '));
            session.out.result(text);
            return;
          }
          // Type key=value pairs by the schema of the QEMU we are talking to (fetched once, cached).
          const info = opts.validate ? (await client.schema()).command(command) : undefined;
          const args = parseCommandArgs(words, info);
          const result = await client.executeUnchecked(command, args);
          session.out.result(result);
        }),
      );
  },
};
