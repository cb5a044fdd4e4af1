/**
 * The contract of one `libqemu` subcommand module, and the wrapper every action runs in: it builds the
 * Session from the global options, turns a thrown error into a readable (or --json) message and the
 * matching exit code, and closes whatever the command opened.
 */
import type { Command } from 'commander';
import { exitCodeFor, ExitCode } from './exit-codes.js';
import type { CliIO } from './output.js';
import { Session } from './session.js';

export interface CliContext {
  readonly io: CliIO;
  /** The stdin the shell reads (a TTY or a pipe). */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  exitCode: number;
}

/** One subcommand (or a family of them): adds itself to the program. */
export interface CliCommandModule {
  register(program: Command, ctx: CliContext): void;
}

export type ActionBody<A extends unknown[]> = (session: Session, cmd: Command, ...args: A) => Promise<number | void>;

/** Wraps a subcommand body for commander: positional args first, then (options, command). */
export function action<A extends unknown[]>(ctx: CliContext, body: ActionBody<A>): (...all: unknown[]) => Promise<void> {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const args = all.slice(0, -2) as A;
    const session = Session.from(cmd, ctx.io);
    try {
      ctx.exitCode = (await body(session, cmd, ...args)) ?? ExitCode.ok;
    } catch (err) {
      session.out.error(err);
      ctx.exitCode = exitCodeFor(err);
    } finally {
      await session.close();
    }
  };
}
