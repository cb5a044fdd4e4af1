/**
 * How `libqemu` writes: results to stdout (readable, or one JSON value per line with --json), notes
 * and errors to stderr. Every error, usage errors included, goes through formatError: one prefix
 * (`libqemu: error:`), its hint in the CLI's words, or one `{"error": …}` line with --json.
 */
import type { Writable } from 'node:stream';
import { QmpCommandError } from '../qmp/errors.js';
import { redact } from '../qmp/redact.js';
import { exitCodeFor } from './exit-codes.js';
import { cliHint, cliMessage, type HintContext } from './hints.js';

export interface CliIO {
  stdout: Writable;
  stderr: Writable;
}

export interface OutputOptions {
  json: boolean;
  /** No notices (taint, progress notes); errors and results are still printed. */
  quiet?: boolean;
  /** The guest and daemon, so hints can name them. */
  context?: HintContext;
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  private readonly context: HintContext;

  constructor(
    readonly io: CliIO,
    options: OutputOptions | boolean,
  ) {
    const o = typeof options === 'boolean' ? { json: options } : options;
    this.json = o.json;
    this.quiet = o.quiet === true;
    this.context = o.context ?? {};
  }

  /** One result: JSON on one line with --json, else pretty JSON (strings as they are). */
  result(value: unknown): void {
    if (this.json) this.line(JSON.stringify(value ?? null));
    else if (typeof value === 'string') this.io.stdout.write(value.endsWith('\n') || value === '' ? value : `${value}\n`);
    else this.line(JSON.stringify(value ?? null, null, 2));
  }

  /** One JSON line with --json, else the readable text. */
  either(readable: string, machine: unknown): void {
    if (this.json) this.line(JSON.stringify(machine));
    else this.line(readable);
  }

  line(text: string): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** A note for humans (stderr), silent with --json or --quiet. */
  note(text: string): void {
    if (!this.json && !this.quiet) this.io.stderr.write(`${text}\n`);
  }

  error(err: unknown): void {
    this.io.stderr.write(formatError(err, this.json, this.context));
  }
}

export const ERROR_PREFIX = 'libqemu: error: ';

export function errorRecord(err: unknown, context: HintContext = {}): Record<string, unknown> {
  const rec: Record<string, unknown> = {
    type: err instanceof Error ? err.name : typeof err,
    message: cliMessage(err, context),
    exitCode: exitCodeFor(err),
  };
  const hint = cliHint(err, context);
  if (hint) rec.hint = hint;
  if (err instanceof QmpCommandError) {
    rec.class = err.errorClass;
    rec.desc = err.desc;
  }
  const path = (err as { path?: unknown }).path;
  if (typeof path === 'string' && path) rec.path = path;
  return redact(rec);
}

export function formatError(err: unknown, json: boolean, context: HintContext = {}): string {
  if (json) return `${JSON.stringify({ error: errorRecord(err, context) })}\n`;
  const hint = cliHint(err, context);
  return `${ERROR_PREFIX}${cliMessage(err, context)}\n${hint ? `  hint: ${hint}\n` : ''}`;
}
