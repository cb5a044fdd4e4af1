/**
 * `libqemu`: the command line. `main(argv)` runs one invocation and resolves to its exit code; the
 * bin script (bin/libqemu.js) calls it. Subcommands live in ./commands/, one module each, listed in
 * ./commands/index.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option, type OutputConfiguration } from 'commander';
import { commandModules } from './commands/index.js';
import type { CliContext } from './command.js';
import { EXIT_CODE_HELP, ExitCode, exitCodeFor, UsageError } from './exit-codes.js';
import { formatError, type CliIO } from './output.js';

export interface MainOptions {
  io?: CliIO;
  stdin?: CliContext['stdin'];
}

/** Parses seconds for --timeout: a positive number. */
function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CommanderError(ExitCode.usage, 'libqemu.badTimeout', `--timeout must be a positive number of seconds, got ${JSON.stringify(value)}`);
  return n;
}

function list(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** The package's version, from the package.json above this module (src/ or dist/src/). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'libqemu') return pkg.version ?? 'unknown';
  }
  return 'unknown';
}

export function buildProgram(ctx: CliContext, options: { json?: boolean } = {}): Command {
  const program = new Command('libqemu')
    .version(packageVersion(), '-V, --version')
    .description('Manage QEMU guests through libvirt and talk QMP to the very same guests.')
    .addOption(new Option('-c, --uri <uri>', 'libvirt URI (default: LIBVIRT_DEFAULT_URI, else libvirt\'s default)').env('LIBVIRT_DEFAULT_URI'))
    .addOption(new Option('-d, --domain <name>', 'the libvirt guest (name or UUID)').env('LIBQEMU_DOMAIN'))
    .addOption(new Option('-s, --socket <path|host:port>', 'a QMP unix socket, or HOST:PORT for QMP over TCP, instead of a libvirt guest (no libvirt needed)').env('LIBQEMU_SOCKET'))
    .addOption(new Option('--via <route>', "how QMP reaches a libvirt guest").choices(['auto', 'monitor', 'passthrough']).default('auto'))
    .addOption(new Option('--allow <commands>', 'QMP commands the ownership policy lets through although libvirt owns their state (comma-separated, or "all")').argParser(list))
    .option('--json', 'machine-readable output: one JSON value per line; errors as {"error": …} on stderr', false)
    .option('-q, --quiet', 'no notices on stderr (taint, progress notes); results and errors are still printed', false)
    .addOption(new Option('--timeout <seconds>', 'per-command and connect timeout').argParser(seconds).default(30))
    .addHelpText('after', `\n${EXIT_CODE_HELP}\n`)
    .exitOverride()
    .configureOutput(output(ctx, options.json === true));
  for (const module of commandModules) module.register(program, ctx);
  // Subcommands report usage errors the same way as the program: main() prints them.
  for (const sub of program.commands) sub.exitOverride().configureOutput(output(ctx, options.json === true));
  return program;
}

/**
 * commander's help goes to our streams; its error messages are printed by main() as ours are. With
 * --json, stderr carries only the JSON error line: the help commander shows on a usage error is dropped.
 */
function output(ctx: CliContext, json: boolean): OutputConfiguration {
  return { writeOut: (s: string) => ctx.io.stdout.write(s), writeErr: (s: string) => (json ? true : ctx.io.stderr.write(s)), outputError: () => undefined };
}

/** A usage error commander found, as a UsageError naming the --help to read. */
function usageError(err: CommanderError, argv: readonly string[], program: Command): UsageError {
  const sub = program.commands.find((c) => argv.includes(c.name()));
  const help = sub ? `libqemu ${sub.name()} --help` : 'libqemu --help';
  // commander.help: no command was given, and commander showed the help
  const message = err.code === 'commander.help' ? 'which command?' : err.message.replace(/^error: /, '');
  return new UsageError(message, { hint: `see ${help}` });
}

/** --json before the parse failed: the error must be JSON too. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** Runs `libqemu` with these arguments (without `node` and the script); resolves to the exit code. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const ctx: CliContext = {
    io: options.io ?? { stdout: process.stdout, stderr: process.stderr },
    stdin: options.stdin ?? process.stdin,
    exitCode: ExitCode.ok,
  };
  const program = buildProgram(ctx, { json: wantsJson(argv) });
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.usage;
  }
  // commander's own check (an unknown --via value) throws from the parser: the same as usage errors.
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      if (err.exitCode === 0) return ExitCode.ok;
      ctx.io.stderr.write(formatError(usageError(err, argv, program), wantsJson(argv)));
      return ExitCode.usage;
    }
    // Not from a command's action (those report their own): still one error line, never a stack.
    ctx.io.stderr.write(formatError(err, wantsJson(argv)));
    return exitCodeFor(err);
  }
  return ctx.exitCode;
}
