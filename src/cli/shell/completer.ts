/**
 * Tab completion for the shell, from the connected QEMU's schema: command names, then member names
 * (`name=`) not given yet, then enum and boolean values after `member=`. In HMP mode, HMP command
 * names from QEMU's own `help`.
 */
import type { CommandInfo, ObjectType, SchemaModel, SchemaType } from '../../schema/model.js';

export const SHELL_COMMANDS = ['.help', '.hmp', '.qmp', '.schema', '.quit', '.exit'] as const;

export interface CompleterSource {
  mode(): 'qmp' | 'hmp';
  model(): SchemaModel | undefined;
  hmpCommands(): readonly string[];
  /** `info` subcommands, from HMP's `help info`. */
  hmpInfo?(): readonly string[];
}

export type CompleterResult = [string[], string];

export function complete(line: string, source: CompleterSource): CompleterResult {
  const firstSpace = line.search(/\s/);
  if (firstSpace === -1) {
    const names = line.startsWith('.') ? [...SHELL_COMMANDS] : source.mode() === 'hmp' ? [...source.hmpCommands()] : [...(source.model()?.commands.keys() ?? [])];
    return [names.filter((n) => n.startsWith(line)).sort(), line];
  }
  if (source.mode() === 'hmp') {
    const m = /^info\s+(\S*)$/.exec(line);
    if (!m) return [[], line];
    const partial = m[1]!;
    return [[...(source.hmpInfo?.() ?? [])].filter((n) => n.startsWith(partial)).sort(), partial];
  }
  const command = line.slice(0, firstSpace);
  const info = source.model()?.command(command);
  if (command === '.schema') {
    const partial = line.slice(line.lastIndexOf(' ') + 1);
    const model = source.model();
    const names = model ? [...model.commands.keys(), ...model.events.keys()] : [];
    return [names.filter((n) => n.startsWith(partial)).sort(), partial];
  }
  if (!info) return [[], line];
  const partial = /\s$/.test(line) ? '' : line.slice(line.search(/\S+$/));
  const given = new Set(
    line
      .slice(firstSpace)
      .trim()
      .split(/\s+/)
      .map((w) => w.split('=')[0]!)
      .filter((k) => k && k !== partial),
  );
  const eq = partial.indexOf('=');
  if (eq > 0) {
    const key = partial.slice(0, eq);
    const type = memberType(info, key);
    const values = type ? valuesOf(type) : [];
    return [values.map((v) => `${key}=${v}`).filter((c) => c.startsWith(partial)), partial];
  }
  const members = memberNames(info.args).filter((m) => !given.has(m));
  return [members.map((m) => `${m}=`).filter((c) => c.startsWith(partial)).sort(), partial];
}

function memberNames(type: ObjectType, seen = new Set<ObjectType>()): string[] {
  if (seen.has(type)) return [];
  seen.add(type);
  const names = new Set(type.members.keys());
  for (const branch of type.variants.values()) for (const n of memberNames(branch, seen)) names.add(n);
  return [...names];
}

function memberType(info: CommandInfo, key: string): SchemaType | undefined {
  const find = (t: ObjectType): SchemaType | undefined => {
    const m = t.members.get(key);
    if (m) return m.type;
    for (const b of t.variants.values()) {
      const found = find(b);
      if (found) return found;
    }
    return undefined;
  };
  return find(info.args);
}

function valuesOf(type: SchemaType): string[] {
  if (type.kind === 'enum') return [...type.values];
  if (type.kind === 'builtin' && type.jsonType === 'boolean') return ['true', 'false'];
  if (type.kind === 'alternate') return type.members.flatMap(valuesOf);
  return [];
}

/** HMP command names from the text of HMP's `help` (`c|cont  -- resume emulation`, `info [subcommand]`). */
export function parseHmpHelp(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const head = line.trim().split(/\s+/)[0];
    if (!head) continue;
    for (const n of head.split('|')) if (/^[a-z][a-z0-9_-]*$/.test(n)) names.add(n);
  }
  return [...names].sort();
}

/** `info` subcommand names from the text of HMP's `help info` (`info balloon  -- show balloon information`). */
export function parseHmpInfoHelp(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*info\s+([a-z][a-z0-9_-]*)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}
