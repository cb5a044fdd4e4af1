/**
 * Readable and JSON descriptions of schema entities for `libqemu schema` and the shell's `.schema`.
 * Introspected type names are meaningless (QEMU masks them), so types are described by shape.
 */
import type { CommandInfo, EventInfo, Features, Member, ObjectType, SchemaModel, SchemaType } from '../schema/model.js';

const MAX_DEPTH = 3;

export function typeSummary(t: SchemaType, depth = 0): string {
  switch (t.kind) {
    case 'builtin':
      return { string: 'str', int: 'int', number: 'number', boolean: 'bool', null: 'null', value: 'any', object: 'object', array: 'array' }[t.jsonType] ?? t.jsonType;
    case 'enum':
      // every value: the list is what a user types after member=
      return t.values.map((v) => JSON.stringify(v)).join(' | ');
    case 'array':
      return `${wrap(typeSummary(t.element, depth))}[]`;
    case 'alternate':
      return t.members.map((m) => typeSummary(m, depth)).join(' | ');
    case 'object':
      if (depth >= MAX_DEPTH) return 'object';
      return t.members.size === 0 && t.variants.size === 0 ? '{}' : 'object';
  }
}

function wrap(s: string): string {
  return s.includes(' ') ? `(${s})` : s;
}

function marks(f: Features): string {
  const m = [...(f.deprecated ? ['deprecated'] : []), ...(f.unstable ? ['unstable'] : [])];
  return m.length ? `  [${m.join(', ')}]` : '';
}

/** Member lines, indented, recursing into object members and union branches up to MAX_DEPTH. */
function memberLines(type: ObjectType, indent: string, depth: number, seen: Set<ObjectType>): string[] {
  const lines: string[] = [];
  for (const m of type.members.values()) lines.push(...memberLine(m, indent, depth, seen));
  for (const [tag, branch] of type.variants) {
    if (branch.members.size === 0) continue;
    lines.push(`${indent}when ${type.tag} = ${JSON.stringify(tag)}:`);
    lines.push(...memberLines(branch, `${indent}  `, depth + 1, seen));
  }
  return lines;
}

function memberLine(m: Member, indent: string, depth: number, seen: Set<ObjectType>): string[] {
  const line = `${indent}${m.name}${m.optional ? '?' : ''}: ${typeSummary(m.type, depth)}${marks(m)}`;
  const obj = m.type.kind === 'object' ? m.type : m.type.kind === 'array' && m.type.element.kind === 'object' ? m.type.element : undefined;
  if (!obj || depth + 1 >= MAX_DEPTH || seen.has(obj) || (obj.members.size === 0 && obj.variants.size === 0)) return [line];
  seen.add(obj);
  const inner = memberLines(obj, `${indent}  `, depth + 1, seen);
  seen.delete(obj);
  return [line, ...inner];
}

export function describeCommand(info: CommandInfo): string {
  const args = memberLines(info.args, '    ', 0, new Set());
  const ret = info.returns;
  const retLines =
    ret.kind === 'object' && (ret.members.size || ret.variants.size)
      ? ['  returns: object', ...memberLines(ret, '    ', 0, new Set())]
      : ret.kind === 'array' && ret.element.kind === 'object'
        ? ['  returns: array of object', ...memberLines(ret.element, '    ', 0, new Set())]
        : [`  returns: ${typeSummary(ret)}`];
  return [
    `command ${info.name}${marks(info)}`,
    args.length ? '  arguments:' : '  arguments: none',
    ...args,
    ...retLines,
    ...(info.allowOob ? ['  allow-oob: yes'] : []),
    ...(info.features.length ? [`  features: ${info.features.join(', ')}`] : []),
  ].join('\n');
}

export function describeEvent(info: EventInfo): string {
  const data = memberLines(info.data, '    ', 0, new Set());
  return [`event ${info.name}${marks(info)}`, data.length ? '  data:' : '  data: none', ...data, ...(info.features.length ? [`  features: ${info.features.join(', ')}`] : [])].join('\n');
}

/** JSON for --json: the same facts, as data. */
export function typeJson(t: SchemaType, depth = 0, seen = new Set<SchemaType>()): unknown {
  if (seen.has(t) || depth > MAX_DEPTH) return { kind: t.kind };
  switch (t.kind) {
    case 'builtin':
      return { kind: 'builtin', type: typeSummary(t) };
    case 'enum':
      return { kind: 'enum', values: t.values, ...(t.valueFeatures.size ? { valueFeatures: Object.fromEntries([...t.valueFeatures].map(([k, f]) => [k, f.features])) } : {}) };
    case 'array':
      return { kind: 'array', element: typeJson(t.element, depth + 1, seen) };
    case 'alternate':
      return { kind: 'alternate', members: t.members.map((m) => typeJson(m, depth + 1, seen)) };
    case 'object': {
      seen.add(t);
      const out = {
        kind: 'object',
        members: [...t.members.values()].map((m) => ({ name: m.name, optional: m.optional, type: typeJson(m.type, depth + 1, seen), ...(m.features.length ? { features: m.features } : {}) })),
        ...(t.tag ? { tag: t.tag, variants: Object.fromEntries([...t.variants].map(([k, v]) => [k, typeJson(v, depth + 1, seen)])) } : {}),
      };
      seen.delete(t);
      return out;
    }
  }
}

export function commandJson(info: CommandInfo): unknown {
  return { kind: 'command', name: info.name, features: info.features, deprecated: info.deprecated, unstable: info.unstable, allowOob: info.allowOob, arguments: typeJson(info.args), returns: typeJson(info.returns) };
}

export function eventJson(info: EventInfo): unknown {
  return { kind: 'event', name: info.name, features: info.features, deprecated: info.deprecated, unstable: info.unstable, data: typeJson(info.data) };
}

/** `*` and `?` globs, for filtering lists. */
export function globMatcher(pattern: string | undefined): (name: string) => boolean {
  if (!pattern) return () => true;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return (name) => re.test(name);
}

export function sortedNames(model: SchemaModel, what: 'commands' | 'events'): string[] {
  return [...model[what].keys()].sort();
}
