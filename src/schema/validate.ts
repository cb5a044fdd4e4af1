/**
 * Checks values against a SchemaModel the way QEMU's QMP input visitor will: strictly for command
 * arguments (before anything is sent), leniently for replies and events (differences are reported,
 * never thrown, because a newer QEMU may add keys and enum values at any time).
 */
import { SchemaError } from './errors.js';
import type { Features, ObjectType, SchemaModel, SchemaType } from './model.js';

/** A use of something QEMU marks deprecated or unstable. */
export interface FeatureUse {
  /** `drive-backup`, `blockdev-add.driver=…`, `block_resize.device` … */
  readonly path: string;
  readonly feature: 'deprecated' | 'unstable';
}

/** One difference between a reply and the schema; replies are never failed for these. */
export interface Drift {
  readonly path: string;
  readonly problem: string;
}

/** Members whose values must never be echoed in messages. */
const SECRET = /pass|secret|key|token/i;

type JsonKind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array';

function kindOf(value: unknown): JsonKind | 'undefined' | 'non-JSON value' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return Number.isFinite(value) ? 'number' : 'non-JSON value';
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'object';
    case 'undefined':
      return 'undefined';
    default:
      return 'non-JSON value';
  }
}

/** The JSON kinds a schema type accepts on the wire. */
function kindsOf(type: SchemaType): readonly JsonKind[] | 'any' {
  switch (type.kind) {
    case 'builtin':
      switch (type.jsonType) {
        case 'int':
        case 'number':
          return ['number'];
        case 'value':
          return 'any';
        default:
          return [type.jsonType];
      }
    case 'enum':
      return ['string'];
    case 'array':
      return ['array'];
    case 'object':
      return ['object'];
    case 'alternate': {
      const kinds: JsonKind[] = [];
      for (const m of type.members) {
        const k = kindsOf(m);
        if (k === 'any') return 'any';
        kinds.push(...k);
      }
      return kinds;
    }
  }
}

function describe(type: SchemaType): string {
  if (type.kind === 'builtin' && type.jsonType === 'int') return 'integer';
  if (type.kind === 'alternate') return [...new Set(type.members.map(describe))].join(' or ');
  const k = kindsOf(type);
  return k === 'any' ? 'any JSON value' : k.join(' or ');
}

function list(values: Iterable<string>, max = 12): string {
  const all = [...values];
  return all.length > max ? `${all.slice(0, max).join(', ')}, … (${all.length} in all)` : all.join(', ');
}

class Checker {
  readonly drift: Drift[] = [];
  uses: FeatureUse[] | undefined;

  constructor(private readonly strict: boolean) {}

  fail(path: string, problem: string, hint?: string): void {
    if (this.strict) throw new SchemaError(path, problem, hint === undefined ? undefined : { hint });
    this.drift.push({ path, problem });
  }

  note(path: string, f: Features): void {
    if (!this.strict || !(f.deprecated || f.unstable)) return;
    (this.uses ??= []).push({ path, feature: f.deprecated ? 'deprecated' : 'unstable' });
  }

  value(type: SchemaType, value: unknown, path: string): void {
    switch (type.kind) {
      case 'builtin':
        return this.builtin(type.jsonType, value, path);
      case 'enum': {
        if (typeof value !== 'string') return this.wrongType(type, value, path);
        if (!type.valueSet.has(value)) {
          const shown = SECRET.test(path) ? 'the value' : JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
          return this.fail(path, `${shown} is not one of ${list(type.values)}`, 'use one of the listed values');
        }
        const f = type.valueFeatures.get(value);
        if (f) this.note(`${path}=${value}`, f);
        return;
      }
      case 'array': {
        if (!Array.isArray(value)) return this.wrongType(type, value, path);
        for (let i = 0; i < value.length; i++) this.value(type.element, value[i], `${path}[${i}]`);
        return;
      }
      case 'object':
        return this.object(type, value, path);
      case 'alternate':
        return this.alternate(type, value, path);
    }
  }

  private builtin(json: string, value: unknown, path: string): void {
    const kind = kindOf(value);
    switch (json) {
      case 'value':
        if (kind === 'non-JSON value' || kind === 'undefined') this.fail(path, `expected any JSON value, got ${kind}`);
        return;
      case 'int':
        if (kind !== 'number' || !Number.isInteger(value)) {
          this.fail(path, `expected integer, got ${kind === 'number' ? 'a fraction' : kind}`);
        }
        return;
      default:
        if (kind !== json) this.fail(path, `expected ${json}, got ${kind}`);
    }
  }

  private wrongType(type: SchemaType, value: unknown, path: string): void {
    this.fail(path, `expected ${describe(type)}, got ${kindOf(value)}`);
  }

  object(type: ObjectType, value: unknown, path: string): void {
    if (kindOf(value) !== 'object') return this.wrongType(type, value, path);
    const obj = value as Record<string, unknown>;
    let branch: ObjectType | undefined;
    if (type.tag !== undefined) {
      const tag = obj[type.tag];
      if (typeof tag === 'string') branch = type.variants.get(tag);
    }
    this.members(type, obj, path);
    if (branch) this.members(branch, obj, path);
    for (const key of Object.keys(obj)) {
      if (obj[key] === undefined) continue; // JSON.stringify drops it: same as absent (own keys only, like JSON)
      if (type.members.has(key) || branch?.members.has(key)) continue;
      const accepted = [...type.members.keys(), ...(branch?.members.keys() ?? [])];
      this.fail(
        `${path}.${key}`,
        'unknown member',
        accepted.length ? `${path} accepts: ${list(accepted, 40)}` : `${path} takes no members`,
      );
    }
  }

  private members(type: ObjectType, obj: Record<string, unknown>, path: string): void {
    for (const m of type.members.values()) {
      const v = obj[m.name];
      const memberPath = `${path}.${m.name}`;
      if (v === undefined) {
        if (!m.optional) this.fail(memberPath, 'missing required member');
        continue;
      }
      this.note(memberPath, m);
      this.value(m.type, v, memberPath);
    }
  }

  private alternate(type: Extract<SchemaType, { kind: 'alternate' }>, value: unknown, path: string): void {
    const kind = kindOf(value);
    const candidates = type.members.filter((m) => {
      const k = kindsOf(m);
      return k === 'any' || (k as readonly string[]).includes(kind);
    });
    if (candidates.length === 0) return this.wrongType(type, value, path);
    let first: SchemaError | undefined;
    for (const c of candidates) {
      const trial = new Checker(true);
      try {
        trial.value(c, value, path);
        if (trial.uses) for (const u of trial.uses) this.note(u.path, { features: [], deprecated: u.feature === 'deprecated', unstable: u.feature === 'unstable' });
        return;
      } catch (err) {
        first ??= err as SchemaError;
      }
    }
    if (this.strict) throw first;
    this.drift.push({ path: first!.path, problem: first!.message.slice(first!.path.length + 2) });
  }
}

/**
 * Throws SchemaError if `args` would be rejected by this QEMU for `command`; otherwise returns the
 * deprecated or unstable things the call uses (empty when none).
 */
export function validateCommand(model: SchemaModel, command: string, args: unknown): readonly FeatureUse[] {
  const info = model.commands.get(command);
  if (!info) {
    const near = [...model.commands.keys()].filter((n) => similar(n, command)).slice(0, 3);
    throw new SchemaError(command, `unknown command (QEMU ${model.versionString ?? 'of unknown version'})`, {
      hint: near.length
        ? `did you mean ${near.join(', ')}? (check with client.supports())`
        : 'check the name, or client.supports() before calling commands newer than this QEMU',
    });
  }
  const checker = new Checker(true);
  checker.note(command, info);
  checker.object(info.args, args === undefined ? {} : args, command);
  return checker.uses ?? [];
}

/** The ways a reply differs from what the schema says `command` returns; never throws. */
export function checkReply(model: SchemaModel, command: string, reply: unknown): readonly Drift[] {
  const info = model.commands.get(command);
  if (!info) return [];
  const checker = new Checker(false);
  checker.value(info.returns, reply, `${command}.return`);
  return checker.drift;
}

/** The ways an event's data differs from the schema; never throws. */
export function checkEvent(model: SchemaModel, event: string, data: unknown): readonly Drift[] {
  const info = model.events.get(event);
  if (!info) return [{ path: event, problem: 'event not in this schema' }];
  const checker = new Checker(false);
  checker.object(info.data, data ?? {}, event);
  return checker.drift;
}

/** Cheap "did you mean": same words in another order or separator, or a common prefix. */
function similar(candidate: string, wanted: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const a = norm(candidate);
  const b = norm(wanted);
  return a === b || (b.length >= 5 && (a.startsWith(b) || b.startsWith(a) || a.includes(b)));
}
