/**
 * Thin camelCase wrappers (`client.commands.setLink({ name, up })`) built from a generated name
 * table; each one is exactly `client.executeUnchecked(name, args, options)`, so validation, timeouts and
 * routing stay the client's.
 */
import type { CommandMap, CommandReturn, ExecuteRest } from '../qmp/command-map.js';

/** camelCase method → command name, as generated (`qemuCommandNames`). */
export type CommandNameTable = Readonly<Record<string, string>>;

/** One method per command, typed from the command map (doc comments and @deprecated carry over). */
export type CommandWrappers<C extends CommandMap, N extends CommandNameTable, O extends {} = {}> = {
  readonly [M in keyof N]: (...rest: ExecuteRest<C, N[M], O>) => Promise<CommandReturn<C, N[M]>>;
};

/** What the wrappers call: any client's escape hatch (the name table is already typed by the map). */
interface Executor {
  executeUnchecked(command: string, args?: Record<string, unknown>, options?: object): Promise<unknown>;
}

/** Builds the wrappers for any client and any generated name table (e.g. one generated for another QEMU). */
export function commandWrappers<C extends CommandMap, N extends CommandNameTable, O extends {} = {}>(client: Executor, names: N): CommandWrappers<C, N, O> {
  const run = client.executeUnchecked.bind(client) as (command: string, ...rest: unknown[]) => Promise<unknown>;
  const wrappers: Record<string, (...rest: unknown[]) => Promise<unknown>> = {};
  for (const [method, command] of Object.entries(names)) wrappers[method] = (...rest) => run(command, ...rest);
  return Object.freeze(wrappers) as unknown as CommandWrappers<C, N, O>;
}
