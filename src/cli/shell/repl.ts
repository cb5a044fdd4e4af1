/**
 * The interactive QMP shell: `command key=value…` (typed by the schema, like `exec`), raw JSON
 * (`{"execute": …}`), or HMP lines in HMP mode. History persists in a private file, Tab completes
 * command and member names, errors print with their hint and the shell carries on. Reads a TTY
 * (prompt, completion, history) or a pipe (commands one per line, no prompt).
 */
import { appendFile, chmod, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { QmpEvent } from '../../qmp/command-map.js';
import { QmpClosedError } from '../../qmp/errors.js';
import { isSecretKey, redact } from '../../qmp/redact.js';
import type { QemuClient } from '../../schema/client.js';
import type { SchemaModel } from '../../schema/model.js';
import { parseCommandArgs, splitWords } from '../args.js';
import { commandJson, describeCommand, describeEvent, eventJson, globMatcher } from '../describe.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import type { Output } from '../output.js';
import { complete, parseHmpHelp } from './completer.js';

export interface ShellOptions {
  client: QemuClient;
  out: Output;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Start in HMP mode. */
  hmp: boolean;
  /** History file, or undefined for none. */
  historyFile: string | undefined;
  /** Print QMP events as they arrive (default true). */
  events: boolean;
  /** Describes what we are connected to, for the banner. */
  target: string;
}

const HISTORY_SIZE = 1000;

const HELP = `Commands:
  COMMAND [key=value ...]     run a QMP command; values are typed by the schema (a.b=1 for nested members)
  COMMAND {"json": "args"}    the same with JSON arguments
  {"execute": ..., ...}       a raw QMP command
  .hmp / .qmp                 switch to HMP (human monitor) lines / back to QMP
  .schema [NAME|GLOB]         describe a command or event, or list names
  .help                       this text
  .quit                       leave (or Ctrl-D)
Tab completes command names, member names and enum values.`;

export async function runShell(options: ShellOptions): Promise<number> {
  const { client, out } = options;
  const tty = options.input.isTTY === true;
  let mode: 'qmp' | 'hmp' = options.hmp ? 'hmp' : 'qmp';
  let model: SchemaModel | undefined;
  let hmpCommands: string[] = [];
  try {
    model = await client.schema();
  } catch (err) {
    out.error(err); // the shell still works, without typed arguments and completion
  }
  if (tty) {
    hmpCommands = await client.hmp('help').then(parseHmpHelp, () => []);
  }
  const history = options.historyFile && tty ? await loadHistory(options.historyFile) : [];
  const rl: Interface = createInterface({
    input: options.input,
    output: out.io.stdout,
    terminal: tty,
    history,
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => complete(line, { mode: () => mode, model: () => model, hmpCommands: () => hmpCommands }),
  });
  const setPrompt = () => rl.setPrompt(mode === 'qmp' ? 'qmp> ' : 'hmp> ');
  setPrompt();
  // Ctrl-C drops the line being typed (like a shell); on an empty line it leaves.
  rl.on('SIGINT', () => {
    if (rl.line.length === 0) {
      out.io.stdout.write('\n');
      rl.close();
      return;
    }
    rl.write(null, { ctrl: true, name: 'e' });
    rl.write(null, { ctrl: true, name: 'u' });
    out.io.stdout.write('^C\n');
    rl.prompt();
  });

  // Events print between prompts: clear the line being typed, print, redraw it.
  const offEvents = options.events
    ? client.on('event', (ev: QmpEvent<string, unknown>) => {
        const data = ev.data === undefined ? undefined : redact(ev.data);
        const text = out.json ? JSON.stringify({ event: ev.event, ...(data === undefined ? {} : { data }), timestamp: ev.timestamp }) : `event ${ev.event}${data === undefined ? '' : ` ${JSON.stringify(data)}`}`;
        if (tty) {
          out.io.stdout.write('\r\x1b[K');
          out.line(text);
          rl.prompt(true);
        } else out.line(text);
      })
    : () => undefined;

  let lost: unknown;
  const offRunstate = client.on('runstate', (s) => {
    if ((s === 'closing' || s === 'closed') && !lost) {
      lost = new QmpClosedError(`the QMP connection to ${options.target} was lost`);
      rl.close();
    }
  });

  if (tty) {
    const v = client.greeting.version.qemu;
    out.io.stderr.write(`libqemu shell: ${options.target}, QEMU ${v.major}.${v.minor}.${v.micro}. Type .help for help, Tab to complete, Ctrl-D to leave.\n`);
    rl.prompt();
  }
  try {
    for await (const raw of rl) {
      const line = raw.trim();
      if (line !== '') {
        if (line === '.quit' || line === '.exit') break;
        if (tty && options.historyFile && !mentionsSecret(line)) await saveHistoryLine(options.historyFile, line);
        try {
          if (line.startsWith('.')) {
            const next = meta(line, { out, model, mode });
            if (next) mode = next;
            setPrompt();
          } else if (mode === 'hmp') {
            out.result(await client.hmp(line));
          } else {
            out.result(await runQmpLine(client, model, line));
          }
        } catch (err) {
          if (err instanceof QmpClosedError) {
            lost ??= err; // reported once, below
            break;
          }
          out.error(err);
        }
      }
      if (lost) break;
      if (tty) rl.prompt();
    }
  } finally {
    offEvents();
    offRunstate();
    rl.close();
  }
  if (lost) {
    out.error(lost);
    return ExitCode.connection;
  }
  return ExitCode.ok;
}

async function runQmpLine(client: QemuClient, model: SchemaModel | undefined, line: string): Promise<unknown> {
  if (line.startsWith('{')) {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (err) {
      throw new UsageError(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { hint: 'a raw command looks like {"execute": "query-status"}' });
    }
    const m = msg as { execute?: unknown; arguments?: unknown };
    if (typeof m.execute !== 'string') throw new UsageError('a raw QMP command needs "execute"', { hint: '{"execute": "query-status"}' });
    return client.executeUnchecked(m.execute, m.arguments as Record<string, unknown> | undefined);
  }
  const [command, ...words] = splitWords(line);
  return client.executeUnchecked(command!, parseCommandArgs(words, model?.command(command!)));
}

/** Dot-commands; returns the new mode when it changes. */
function meta(line: string, ctx: { out: Output; model: SchemaModel | undefined; mode: 'qmp' | 'hmp' }): 'qmp' | 'hmp' | undefined {
  const [word, arg] = splitWords(line);
  switch (word) {
    case '.help':
      ctx.out.line(HELP);
      return undefined;
    case '.hmp':
      ctx.out.note('HMP mode: lines go to the human monitor (.qmp to return)');
      return 'hmp';
    case '.qmp':
      ctx.out.note('QMP mode');
      return 'qmp';
    case '.schema': {
      const model = ctx.model;
      if (!model) throw new UsageError('the schema is not available on this connection');
      if (arg && !/[*?]/.test(arg)) {
        const c = model.command(arg);
        const e = model.events.get(arg);
        if (!c && !e) throw new UsageError(`no command or event named ${JSON.stringify(arg)}`, { hint: '.schema GLOB lists names, e.g. .schema query-*' });
        if (c) ctx.out.either(describeCommand(c), commandJson(c));
        if (e) ctx.out.either(describeEvent(e), eventJson(e));
        return undefined;
      }
      const match = globMatcher(arg);
      const names = [...model.commands.keys(), ...model.events.keys()].filter(match).sort();
      ctx.out.either(names.join('\n'), names);
      return undefined;
    }
    default:
      throw new UsageError(`unknown shell command ${JSON.stringify(word)}`, { hint: 'type .help' });
  }
}

/** Lines that carry a password or secret are kept out of the history file. */
function mentionsSecret(line: string): boolean {
  return (line.match(/[A-Za-z_-]+(?==|"\s*:)/g) ?? []).some(isSecretKey);
}

async function loadHistory(file: string): Promise<string[]> {
  try {
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    return lines.slice(-HISTORY_SIZE).reverse(); // readline wants the newest first
  } catch {
    return [];
  }
}

async function saveHistoryLine(file: string, line: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await appendFile(file, `${line}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
  } catch {
    // history is a convenience: never fail a command over it
  }
}
