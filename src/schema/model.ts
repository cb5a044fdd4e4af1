/**
 * The runtime model of a QEMU's QAPI schema, built from the reply to `query-qmp-schema`
 * (`SchemaInfo[]`, see QEMU's qapi/introspect.json). Type names in that reply are masked
 * ("meaningless strings"), so the model links types by reference and only command, event, member and
 * enum value names carry meaning.
 */
import { SchemaError } from './errors.js';

// ---- The wire format (qapi/introspect.json), as QEMU sends it. Unknown keys are ignored. ----

export type RawJsonType = 'string' | 'number' | 'int' | 'boolean' | 'null' | 'object' | 'array' | 'value';

export interface RawMember {
  name: string;
  type: string;
  /** Present (always null) when the member is optional. */
  default?: null;
  features?: string[];
}

export type RawSchemaInfo = { name: string; features?: string[] } & (
  | { 'meta-type': 'builtin'; 'json-type': RawJsonType }
  | { 'meta-type': 'enum'; values: string[]; members?: { name: string; features?: string[] }[] }
  | { 'meta-type': 'array'; 'element-type': string }
  | {
      'meta-type': 'object';
      members: RawMember[];
      tag?: string;
      variants?: { case: string; type: string }[];
    }
  | { 'meta-type': 'alternate'; members: { type: string }[] }
  | { 'meta-type': 'command'; 'arg-type': string; 'ret-type': string; 'allow-oob'?: boolean }
  | { 'meta-type': 'event'; 'arg-type': string }
);

/** `query-version`'s reply: what the cache and the generated header are keyed by. */
export interface QemuVersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

// ---- The linked model. ----

/** QAPI features that change how a caller should treat an entity. */
export interface Features {
  readonly features: readonly string[];
  readonly deprecated: boolean;
  readonly unstable: boolean;
}

export interface BuiltinType {
  readonly kind: 'builtin';
  /** The masked (here: real) builtin name: `int`, `str`, `bool`, `number`, `null`, `any`. */
  readonly id: string;
  readonly jsonType: RawJsonType;
}

export interface EnumType {
  readonly kind: 'enum';
  readonly id: string;
  readonly values: readonly string[];
  readonly valueSet: ReadonlySet<string>;
  /** Per-value features (QEMU 6.0+), only for values that have any. */
  readonly valueFeatures: ReadonlyMap<string, Features>;
}

export interface ArrayType {
  readonly kind: 'array';
  readonly id: string;
  element: SchemaType;
}

export interface Member extends Features {
  readonly name: string;
  readonly optional: boolean;
  type: SchemaType;
}

export interface ObjectType {
  readonly kind: 'object';
  readonly id: string;
  /** Base members (for a flat union, including the tag). */
  readonly members: ReadonlyMap<string, Member>;
  /** The discriminator member of a flat union. */
  readonly tag: string | undefined;
  /** Flat union branches by tag value; tag values absent here add no members. */
  readonly variants: ReadonlyMap<string, ObjectType>;
}

export interface AlternateType {
  readonly kind: 'alternate';
  readonly id: string;
  readonly members: SchemaType[];
}

export type SchemaType = BuiltinType | EnumType | ArrayType | ObjectType | AlternateType;

export interface CommandInfo extends Features {
  readonly name: string;
  readonly args: ObjectType;
  readonly returns: SchemaType;
  readonly allowOob: boolean;
}

export interface EventInfo extends Features {
  readonly name: string;
  readonly data: ObjectType;
}

function features(list: string[] | undefined): Features {
  const f = list ?? [];
  return { features: f, deprecated: f.includes('deprecated'), unstable: f.includes('unstable') };
}

/** A QEMU's schema, linked and indexed by command and event name. Immutable once built. */
export class SchemaModel {
  readonly commands: ReadonlyMap<string, CommandInfo>;
  readonly events: ReadonlyMap<string, EventInfo>;
  /** Every type by its (masked) id. */
  readonly types: ReadonlyMap<string, SchemaType>;

  private constructor(
    commands: Map<string, CommandInfo>,
    events: Map<string, EventInfo>,
    types: Map<string, SchemaType>,
    /** The QEMU this schema came from, when known. */
    readonly version: QemuVersionInfo | undefined,
    /** The reply it was built from, for saving and regenerating. */
    readonly raw: readonly RawSchemaInfo[],
  ) {
    this.commands = commands;
    this.events = events;
    this.types = types;
  }

  /** Builds the model from `query-qmp-schema`'s reply; throws SchemaError if it is not well formed. */
  static fromIntrospection(raw: unknown, version?: QemuVersionInfo): SchemaModel {
    if (!Array.isArray(raw)) {
      throw new SchemaError('', 'query-qmp-schema did not return an array', {
        hint: 'pass the "return" value of query-qmp-schema (SchemaInfo[])',
      });
    }
    const infos = raw as RawSchemaInfo[];
    const types = new Map<string, SchemaType>();
    const pendingLinks: (() => void)[] = [];
    const lookup = (id: string, usedBy: string): SchemaType => {
      const t = types.get(id);
      if (!t) throw new SchemaError('', `schema entity ${usedBy} refers to unknown type ${JSON.stringify(id)}`);
      return t;
    };

    // Pass 1: one object per type, so that references (including cycles) can be linked in pass 2.
    for (const info of infos) {
      if (typeof info !== 'object' || info === null || typeof info.name !== 'string') {
        throw new SchemaError('', `malformed SchemaInfo entry: ${JSON.stringify(info)?.slice(0, 200)}`);
      }
      switch (info['meta-type']) {
        case 'builtin':
          types.set(info.name, { kind: 'builtin', id: info.name, jsonType: info['json-type'] });
          break;
        case 'enum': {
          const valueFeatures = new Map<string, Features>();
          for (const m of info.members ?? []) if (m.features?.length) valueFeatures.set(m.name, features(m.features));
          types.set(info.name, {
            kind: 'enum',
            id: info.name,
            values: info.values,
            valueSet: new Set(info.values),
            valueFeatures,
          });
          break;
        }
        case 'array': {
          const t: ArrayType = { kind: 'array', id: info.name, element: undefined as unknown as SchemaType };
          types.set(info.name, t);
          pendingLinks.push(() => (t.element = lookup(info['element-type'], info.name)));
          break;
        }
        case 'object': {
          const members = new Map<string, Member>();
          const variants = new Map<string, ObjectType>();
          types.set(info.name, { kind: 'object', id: info.name, members, tag: info.tag, variants });
          pendingLinks.push(() => {
            for (const m of info.members) {
              members.set(m.name, {
                name: m.name,
                optional: 'default' in m,
                type: lookup(m.type, info.name),
                ...features(m.features),
              });
            }
            for (const v of info.variants ?? []) {
              const branch = lookup(v.type, info.name);
              if (branch.kind !== 'object') throw new SchemaError('', `union ${info.name} branch ${v.case} is not an object`);
              variants.set(v.case, branch);
            }
          });
          break;
        }
        case 'alternate': {
          const t: AlternateType = { kind: 'alternate', id: info.name, members: [] };
          types.set(info.name, t);
          pendingLinks.push(() => t.members.push(...info.members.map((m) => lookup(m.type, info.name))));
          break;
        }
        default:
          // Commands and events are linked below; an unknown meta-type from a future QEMU is skipped.
          break;
      }
    }
    for (const link of pendingLinks) link();

    const asObject = (id: string, usedBy: string): ObjectType => {
      const t = lookup(id, usedBy);
      if (t.kind !== 'object') throw new SchemaError('', `${usedBy}: arguments type is not an object`);
      return t;
    };
    const commands = new Map<string, CommandInfo>();
    const events = new Map<string, EventInfo>();
    for (const info of infos) {
      if (info['meta-type'] === 'command') {
        commands.set(info.name, {
          name: info.name,
          args: asObject(info['arg-type'], info.name),
          returns: lookup(info['ret-type'], info.name),
          allowOob: info['allow-oob'] === true,
          ...features(info.features),
        });
      } else if (info['meta-type'] === 'event') {
        events.set(info.name, { name: info.name, data: asObject(info['arg-type'], info.name), ...features(info.features) });
      }
    }
    return new SchemaModel(commands, events, types, version, infos);
  }

  /** The command, or undefined if this QEMU does not have it. */
  command(name: string): CommandInfo | undefined {
    return this.commands.get(name);
  }

  /**
   * True if this QEMU has the command and, when `member` is given, that argument member (a base member
   * or a member of any flat-union branch).
   */
  supports(command: string, member?: string): boolean {
    const info = this.commands.get(command);
    if (!info) return false;
    return member === undefined || hasMember(info.args, member);
  }

  /** True if this QEMU can emit the event and, when `member` is given, its data has that member. */
  supportsEvent(name: string, member?: string): boolean {
    const info = this.events.get(name);
    if (!info) return false;
    return member === undefined || hasMember(info.data, member);
  }

  /** `7.2.22`, or undefined when the version is not known. */
  get versionString(): string | undefined {
    const v = this.version?.qemu;
    return v ? `${v.major}.${v.minor}.${v.micro}` : undefined;
  }
}

function hasMember(type: ObjectType, member: string): boolean {
  if (type.members.has(member)) return true;
  for (const branch of type.variants.values()) if (hasMember(branch, member)) return true;
  return false;
}
