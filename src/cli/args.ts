/**
 * Command arguments on the command line: one JSON object, or `key=value` pairs whose values are typed
 * by the connected QEMU's schema (`up=false` is a boolean for set_link, `size=1024` a number, nested
 * members as `a.b=1`, arrays as JSON or `a,b,c`, anything else as JSON). Problems the schema can see
 * are SchemaErrors, raised before anything is sent.
 */
import type { CommandInfo, ObjectType, SchemaType } from '../schema/model.js';
import { SchemaError } from '../schema/errors.js';
import { UsageError } from './exit-codes.js';

/**
 * Splits a shell line into words: whitespace separates, quotes ('…' or "…") group, and JSON brackets
 * keep `{"a": 1}` and `[1, 2]` together even with spaces inside.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  let depth = 0;
  let jsonString = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
      continue;
    }
    if (depth > 0) {
      cur += ch;
      if (jsonString) {
        if (ch === '\\' && i + 1 < line.length) cur += line[++i];
        else if (ch === '"') jsonString = false;
      } else if (ch === '"') jsonString = true;
      else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') depth--;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === '{' || ch === '[') {
      depth = 1;
      cur += ch;
    } else if (ch === "'" || ch === '"') quote = ch;
    else cur += ch;
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote in: ${line}`);
  if (depth > 0) throw new UsageError(`unbalanced { or [ in: ${line}`, { hint: 'JSON values must be complete on the line' });
  if (inWord) words.push(cur);
  return words;
}

/** Arguments from words: `[]` → undefined, `['{…}']` → that object, else key=value pairs. */
export function parseCommandArgs(words: readonly string[], info: CommandInfo | undefined): Record<string, unknown> | undefined {
  if (words.length === 0) return undefined;
  const command = info?.name ?? 'command';
  if (words.length === 1 && words[0]!.trimStart().startsWith('{')) {
    const parsed = parseJson(words[0]!, command);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new UsageError(`${command}: the arguments must be a JSON object`, { hint: `e.g. '{"name": "net0", "up": false}'` });
    }
    return parsed as Record<string, unknown>;
  }
  const args: Record<string, unknown> = {};
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) {
      throw new UsageError(`${command}: expected key=value or one JSON object, got ${JSON.stringify(word)}`, { hint: 'e.g. set_link name=net0 up=false' });
    }
    const path = word.slice(0, eq).split('.');
    if (path.some((p) => p === '')) throw new UsageError(`${command}: bad member path ${JSON.stringify(word.slice(0, eq))}`);
    setPath(args, path, word.slice(eq + 1), info?.args, command);
  }
  return args;
}

function setPath(target: Record<string, unknown>, path: string[], raw: string, type: ObjectType | undefined, where: string): void {
  const [key, ...rest] = path as [string, ...string[]];
  const memberType = type ? memberTypeOf(type, key, target) : undefined;
  const here = `${where}.${key}`;
  if (rest.length === 0) {
    if (key in target) throw new UsageError(`${here} is given twice`);
    target[key] = convert(raw, memberType, here);
    return;
  }
  const existing = target[key];
  let child: Record<string, unknown>;
  if (existing === undefined) target[key] = child = {};
  else if (existing !== null && typeof existing === 'object' && !Array.isArray(existing)) child = existing as Record<string, unknown>;
  else throw new UsageError(`${here} is both a value and an object`);
  setPath(child, rest, raw, memberType?.kind === 'object' ? memberType : undefined, here);
}

/** The member's type: a base member, or one of a flat union's branches (the chosen one when the tag is set). */
function memberTypeOf(type: ObjectType, key: string, sofar: Record<string, unknown>): SchemaType | undefined {
  const m = type.members.get(key);
  if (m) return m.type;
  const tag = type.tag === undefined ? undefined : sofar[type.tag];
  if (typeof tag === 'string') {
    const branch = type.variants.get(tag);
    return branch ? memberTypeOf(branch, key, sofar) : undefined;
  }
  for (const branch of type.variants.values()) {
    const t = memberTypeOf(branch, key, sofar);
    if (t) return t;
  }
  return undefined;
}

const TRUE = new Set(['true', 'on', 'yes', '1']);
const FALSE = new Set(['false', 'off', 'no', '0']);

/** A raw string as the schema type wants it. */
export function convert(raw: string, type: SchemaType | undefined, path: string): unknown {
  if (!type) return guess(raw);
  switch (type.kind) {
    case 'builtin':
      switch (type.jsonType) {
        case 'string':
          return raw;
        case 'int':
        case 'number': {
          const n = Number(raw);
          if (raw.trim() === '' || !Number.isFinite(n) || (type.jsonType === 'int' && !Number.isInteger(n))) {
            throw new SchemaError(path, `expected ${type.jsonType === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`, { hint: 'write the number without quotes or units' });
          }
          return n;
        }
        case 'boolean':
          if (TRUE.has(raw.toLowerCase())) return true;
          if (FALSE.has(raw.toLowerCase())) return false;
          throw new SchemaError(path, `expected a boolean, got ${JSON.stringify(raw)}`, { hint: 'use true/false (or on/off, yes/no)' });
        case 'null':
          if (raw === 'null') return null;
          throw new SchemaError(path, `expected null, got ${JSON.stringify(raw)}`);
        default:
          return guess(raw);
      }
    case 'enum':
      return raw;
    case 'array':
      if (raw.trimStart().startsWith('[')) return parseJson(raw, path);
      return raw === '' ? [] : raw.split(',').map((part, i) => convert(part, type.element, `${path}[${i}]`));
    case 'object':
      if (raw.trimStart().startsWith('{')) return parseJson(raw, path);
      throw new SchemaError(path, `expects an object, got ${JSON.stringify(raw)}`, { hint: `give it as JSON, or member by member: ${path.split('.').slice(1).join('.')}.NAME=VALUE` });
    case 'alternate': {
      // The first branch that accepts the text, in the order a reader would expect.
      const order = ['boolean', 'int', 'number', 'null', 'object', 'array', 'string', 'enum'];
      const rank = (t: SchemaType) => order.indexOf(t.kind === 'builtin' ? t.jsonType : t.kind);
      for (const branch of [...type.members].sort((a, b) => rank(a) - rank(b))) {
        try {
          const v = convert(raw, branch, path);
          if (branch.kind === 'enum' && !branch.valueSet.has(raw)) continue;
          return v;
        } catch {
          // try the next branch
        }
      }
      return guess(raw);
    }
  }
}

/** No schema to go by: JSON if it parses (numbers, booleans, null, objects, arrays), else the text. */
function guess(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function parseJson(raw: string, path: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new UsageError(`${path}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { hint: 'quote JSON for the shell: \'{"a": 1}\'' });
  }
}
