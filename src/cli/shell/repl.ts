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
import type { TransactionArguments } from '../../generated/index.js';
import type { CommandInfo, SchemaModel } from '../../schema/model.js';
import { parseCommandArgs, splitWords } from '../args.js';
import { commandJson, describeCommand, describeEvent, eventJson, globMatcher } from '../describe.js';
import { ExitCode, exitCodeFor, UsageError } from '../exit-codes.js';
import type { Output } from '../output.js';
import { complete, parseHmpHelp, parseHmpInfoHelp } from './completer.js';
import type { WireTrace } from './trace.js';

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
  /** Print every command as sent (-v). */
  verbose?: boolean;
  /** Where -v and -l see the wire: the shell calls `start()` once its own set-up traffic is done. */
  trace?: WireTrace;
}

const HISTORY_SIZE = 1000;

const HELP = `Commands:
  COMMAND [key=value ...]     run a QMP command; values are typed by the schema (a.b=1 for nested members)
  COMMAND {"json": "args"}    the same with JSON arguments
  {"execute": ..., ...}       a raw QMP command
  transaction(                a QMP transaction, as in qmp-shell: one action per line
    ACTION [key=value ...]      e.g. block-dirty-bitmap-add node=drive0 name=bm0
  )                           sends it (or end the last action's line with " )")
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
  let hmpInfo: string[] = [];
  /** Actions of a transaction( … ) being typed, or undefined outside one. */
  let transaction: TransactionAction[] | undefined;
  /** The exit code of the first line that failed (a piped shell reports it). */
  let failed: number | undefined;
  try {
    model = await client.schema();
  } catch (err) {
    out.error(err); // the shell still works, without typed arguments and completion
  }
  if (tty) {
    // `help` and `help info` are read-only, so the ownership policy lets them through on libvirt guests too
    hmpCommands = await client.hmp('help').then(parseHmpHelp, () => []);
    hmpInfo = await client.hmp('help info').then(parseHmpInfoHelp, () => []);
  }
  options.trace?.start();
  const history = options.historyFile && tty ? await loadHistory(options.historyFile) : [];
  const rl: Interface = createInterface({
    input: options.input,
    output: out.io.stdout,
    terminal: tty,
    history,
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => complete(line, { mode: () => mode, model: () => model, hmpCommands: () => hmpCommands, hmpInfo: () => hmpInfo }),
  });
  const setPrompt = () => rl.setPrompt(transaction ? 'transaction> ' : mode === 'qmp' ? 'qmp> ' : 'hmp> ');
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
  let quit = false;
  try {
    for await (const raw of rl) {
      const line = raw.trim();
      if (line !== '') {
        if (line === '.quit' || line === '.exit') {
          quit = true;
          break;
        }
        if (tty && options.historyFile && !mentionsSecret(line)) await saveHistoryLine(options.historyFile, line);
        try {
          if (line.startsWith('.')) {
            const next = meta(line, { out, model, mode });
            if (next) mode = next;
          } else if (mode === 'qmp' && (transaction || /^transaction\(/.test(line))) {
            const step = transactionLine(line, transaction ?? [], model);
            transaction = step.done ? undefined : step.actions;
            if (step.done) {
              // the actions' data were typed from this QEMU's schema at run time, not by the 7.2 types
              out.result(await client.execute('transaction', { actions: step.actions } as unknown as TransactionArguments));
            }
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
          transaction = undefined; // a broken transaction is dropped as a whole
          failed ??= exitCodeFor(err);
          out.error(err);
        }
        setPrompt();
      }
      if (lost) break;
      if (tty) rl.prompt();
    }
    // Ctrl-D: leave the terminal on a fresh line, as shells do
    if (tty && !quit && !lost) out.io.stdout.write('\n');
  } finally {
    offEvents();
    offRunstate();
    rl.close();
  }
  if (lost) {
    out.error(lost);
    return ExitCode.connection;
  }
  if (transaction) {
    const err = new UsageError('the input ended inside transaction( … ): nothing was sent', { hint: 'close it with a line holding only )' });
    out.error(err);
    failed ??= ExitCode.usage;
  }
  // A terminal user saw each error as it happened; a script must learn from the exit code.
  return tty ? ExitCode.ok : (failed ?? ExitCode.ok);
}

/** One action of a QMP transaction, as `transaction` takes it. */
export interface TransactionAction {
  type: string;
  data: Record<string, unknown>;
}

/**
 * One line of qmp-shell's transaction syntax: `transaction(` opens (it may carry the first action),
 * each line is `ACTION key=value…`, and `)` alone or at the end of an action line sends it.
 */
export function transactionLine(line: string, sofar: TransactionAction[], model: SchemaModel | undefined): { actions: TransactionAction[]; done: boolean } {
  let words = splitWords(line.replace(/^transaction\(/, 'transaction( '));
  if (words[0] === 'transaction(') {
    if (sofar.length) throw new UsageError('transaction( inside a transaction', { hint: 'close the open one with )' });
    words = words.slice(1);
  }
  let done = false;
  if (words.length && words[words.length - 1] === ')') {
    done = true;
    words = words.slice(0, -1);
  } else if (words.length && words[words.length - 1]!.endsWith(')') && !words[words.length - 1]!.includes('=')) {
    done = true;
    words[words.length - 1] = words[words.length - 1]!.slice(0, -1);
  }
  const actions = [...sofar];
  if (words.length) {
    const [type, ...rest] = words as [string, ...string[]];
    const data = parseCommandArgs(rest, actionInfo(model, type)) ?? {};
    actions.push({ type, data });
  }
  if (done && actions.length === 0) throw new UsageError('an empty transaction', { hint: 'give one action per line between transaction( and )' });
  return { actions, done };
}

/** The schema of a transaction action's `data`, shaped like a command for parseCommandArgs. */
function actionInfo(model: SchemaModel | undefined, type: string): CommandInfo | undefined {
  const actions = model?.command('transaction')?.args.members.get('actions')?.type;
  const element = actions?.kind === 'array' ? actions.element : undefined;
  if (element?.kind !== 'object') return undefined;
  const branch = element.variants.get(type);
  if (!branch) {
    throw new UsageError(`${JSON.stringify(type)} is not a transaction action of this QEMU`, { hint: `actions: ${[...element.variants.keys()].sort().join(', ')}` });
  }
  const data = branch.members.get('data')?.type;
  return data?.kind === 'object' ? ({ name: type, args: data } as CommandInfo) : undefined;
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
