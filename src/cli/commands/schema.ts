/** `libqemu schema [NAME]`: list the QEMU's commands and events, or describe one (members, types, deprecation). */
import type { Command } from 'commander';
import { SchemaError } from '../../schema/errors.js';
import { action, type CliCommandModule } from '../command.js';
import { commandJson, describeCommand, describeEvent, eventJson, globMatcher, sortedNames } from '../describe.js';
import { loadModel, type SchemaSourceOptions } from '../schema-source.js';

interface SchemaOptions extends SchemaSourceOptions {
  commands?: boolean;
  events?: boolean;
}

export const schemaCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('schema')
      .description('list commands and events of a QEMU, or describe one (members, types, deprecation)')
      .argument('[name]', 'a command or event name to describe, or a glob (query-*) to filter the list')
      .option('--commands', 'only commands')
      .option('--events', 'only events')
      .option('--file <path>', 'read a saved schema (from gen --save-schema, or query-qmp-schema output)')
      .option('--qemu <binary>', 'start this QEMU binary just to read its schema (default without --socket/--domain: qemu-system-x86_64)')
      .addHelpText(
        'after',
        `
Examples:
  libqemu schema                        # everything qemu-system-x86_64 offers
  libqemu schema 'query-*' --commands
  libqemu schema set_link
  libqemu -d web1 --json schema BLOCK_JOB_COMPLETED`,
      )
      .action(
        action(ctx, async (session, cmd: Command, name: string | undefined) => {
          const opts = cmd.opts<SchemaOptions>();
          const model = await loadModel(session, opts);
          const out = session.out;
          if (name && !/[*?]/.test(name)) {
            const command = opts.events ? undefined : model.command(name);
            const event = opts.commands ? undefined : model.events.get(name);
            if (!command && !event) {
              throw new SchemaError(name, `this QEMU (${model.versionString ?? 'unknown version'}) has no ${opts.events ? 'event' : opts.commands ? 'command' : 'command or event'} named ${JSON.stringify(name)}`, {
                hint: `list them with: libqemu schema '*${name.slice(0, 4)}*'`,
              });
            }
            if (command) out.either(describeCommand(command), commandJson(command));
            if (command && event && !session.options.json) out.line('');
            if (event) out.either(describeEvent(event), eventJson(event));
            return;
          }
          const match = globMatcher(name);
          const lists: ('commands' | 'events')[] = opts.commands && !opts.events ? ['commands'] : opts.events && !opts.commands ? ['events'] : ['commands', 'events'];
          const result: Record<string, { name: string; deprecated: boolean; unstable: boolean }[]> = {};
          for (const what of lists) {
            const table = model[what] as ReadonlyMap<string, { deprecated: boolean; unstable: boolean }>;
            result[what] = sortedNames(model, what)
              .filter(match)
              .map((n) => ({ name: n, deprecated: table.get(n)!.deprecated, unstable: table.get(n)!.unstable }));
          }
          if (session.options.json) {
            out.line(JSON.stringify({ qemu: model.versionString ?? null, ...result }));
            return;
          }
          for (const what of lists) {
            const rows = result[what]!;
            out.line(`${what === 'commands' ? 'Commands' : 'Events'} (${rows.length}):`);
            for (const r of rows) out.line(`  ${r.name}${r.deprecated ? '  [deprecated]' : ''}${r.unstable ? '  [unstable]' : ''}`);
          }
        }),
      );
  },
};
