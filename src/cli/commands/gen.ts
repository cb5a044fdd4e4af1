/** `libqemu gen`: TypeScript types (commands, events, wrappers) generated from a QEMU's schema. */
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import { schemaSource, type SchemaSourceOptions } from '../schema-source.js';

interface GenOptions extends SchemaSourceOptions {
  output?: string;
  saveSchema?: string;
}

export const genCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('gen')
      .description('generate TypeScript types for the commands and events of a QEMU (from its binary, socket, guest or a saved schema)')
      .option('-o, --output <file>', 'write the module here (default: stdout)')
      .option('--save-schema <file>', 'also save the schema as JSON, to regenerate later without that QEMU')
      .option('--file <path>', 'read a saved schema instead of asking a QEMU')
      .option('--qemu <binary>', 'start this QEMU binary to read its schema (default without --socket/--domain: qemu-system-x86_64)')
      .addHelpText(
        'after',
        `
Examples:
  libqemu gen -o src/qemu-types.ts
  libqemu gen --qemu /opt/qemu-9/bin/qemu-system-x86_64 -o src/qemu9.ts --save-schema qemu9.json
  libqemu -d web1 gen -o web1-types.ts`,
      )
      .action(
        action(ctx, async (session, cmd: Command) => {
          const opts = cmd.opts<GenOptions>();
          const { generateTypes } = await import('../../schema/generate.js');
          const result = await generateTypes({
            source: await schemaSource(session, opts),
            timeoutMs: session.timeoutMs,
            ...(opts.output ? { output: opts.output } : {}),
            ...(opts.saveSchema ? { saveSchema: opts.saveSchema } : {}),
          });
          const summary = { qemu: result.qemuVersion, commands: result.model.commands.size, events: result.model.events.size, output: opts.output ?? null, schema: opts.saveSchema ?? null };
          if (!opts.output) session.out.io.stdout.write(result.code);
          if (session.options.json) {
            if (opts.output) session.out.line(JSON.stringify(summary));
          } else {
            session.out.io.stderr.write(`generated types for QEMU ${result.qemuVersion}: ${summary.commands} commands, ${summary.events} events${opts.output ? ` → ${opts.output}` : ''}\n`);
          }
        }),
      );
  },
};
