/**
 * How `libqemu` writes: results to stdout (readable, or one JSON value per line with --json), notes
 * and errors to stderr. Errors always carry their hint, the way LibqemuError defines it.
 */
import type { Writable } from 'node:stream';
import { LibqemuError } from '../common/errors.js';
import { PolicyError } from '../hybrid/errors.js';
import { QmpCommandError } from '../qmp/errors.js';
import { redact } from '../qmp/redact.js';
import { exitCodeFor } from './exit-codes.js';

export interface CliIO {
  stdout: Writable;
  stderr: Writable;
}

export class Output {
  constructor(
    readonly io: CliIO,
    readonly json: boolean,
  ) {}

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

  /** A note for humans (stderr), silent with --json. */
  note(text: string): void {
    if (!this.json) this.io.stderr.write(`${text}\n`);
  }

  error(err: unknown): void {
    this.io.stderr.write(formatError(err, this.json));
  }
}

export function errorRecord(err: unknown): Record<string, unknown> {
  const rec: Record<string, unknown> = {
    type: err instanceof Error ? err.name : typeof err,
    message: err instanceof Error ? err.message : String(err),
    exitCode: exitCodeFor(err),
  };
  const hint = hintOf(err);
  if (hint) rec.hint = hint;
  if (err instanceof QmpCommandError) {
    rec.class = err.errorClass;
    rec.desc = err.desc;
  }
  const path = (err as { path?: unknown }).path;
  if (typeof path === 'string' && path) rec.path = path;
  return redact(rec);
}

export function formatError(err: unknown, json: boolean): string {
  if (json) return `${JSON.stringify({ error: errorRecord(err) })}\n`;
  const message = err instanceof Error ? err.message : String(err);
  const hint = hintOf(err);
  return `libqemu: error: ${message}\n${hint ? `  hint: ${hint}\n` : ''}`;
}

/** The error's hint; for a policy refusal, also how to opt in from the command line. */
function hintOf(err: unknown): string | undefined {
  if (err instanceof PolicyError) return `${err.hint}; on the command line: --allow ${err.allowName}`;
  return err instanceof LibqemuError ? err.hint : undefined;
}
