/** `libqemu exec COMMAND [ARGS…]`: one QMP (or --hmp) command; arguments as JSON or schema-typed key=value pairs. */
import type { Command } from 'commander';
import { parseCommandArgs } from '../args.js';
import { action, type CliCommandModule } from '../command.js';

interface ExecOptions {
  hmp?: boolean;
  validate: boolean;
}

export const execCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('exec')
      .description('run one QMP command and print its result (arguments are checked against the schema before sending)')
      .argument('<command>', 'QMP command, e.g. query-status (with --hmp: the HMP command line)')
      .argument('[args...]', 'arguments: key=value pairs typed by the schema (a.b=1 for nested members), or one JSON object')
      .option('--hmp', 'run an HMP command line through human-monitor-command and print its text')
      .option('--no-validate', 'send without checking against the schema first (QEMU still checks)')
      .addHelpText(
        'after',
        `
Examples:
  libqemu --socket /tmp/q.sock exec query-status
  libqemu -d web1 exec set_link name=net0 up=false
  libqemu -d web1 exec qom-get '{"path": "/machine", "property": "type"}'
  libqemu -d web1 --json exec query-cpus-fast
  libqemu -d web1 exec --hmp info status`,
      )
      .action(
        action(ctx, async (session, cmd: Command, command: string, words: string[]) => {
          const opts = cmd.opts<ExecOptions>();
          const client = await session.qmp({ validate: opts.validate });
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
