/**
 * Renders a SchemaModel as one TypeScript module: a command map, an event map, a camelCase name table
 * for the thin wrappers, and a named type for every object, enum and alternate. QEMU masks its type
 * names, so each type is named after the shallowest place it is used (`SetLinkArguments`,
 * `QueryStatusReturn`, `QueryStatusReturnStatus`, …). The output is deterministic: the same schema
 * always gives the same bytes.
 */
import type { Features, ObjectType, SchemaModel, SchemaType } from './model.js';

export interface RenderOptions {
  /** For the header: `7.2.22`. */
  qemuVersion: string;
  /** For the header: QEMU's package string, e.g. `Debian 1:7.2+dfsg-7+deb12u18+b3`. */
  qemuPackage?: string;
  /**
   * The QAPI module (qapi/<module>.json) that defines each command and event, keyed `command:<name>` /
   * `event:<NAME>`: with it, each doc comment links to that entry of QEMU's QMP reference.
   */
  qapiModules?: Readonly<Record<string, string>>;
  /** For the header: how to regenerate this file (default: `libqemu gen`). */
  regenerate?: string;
}

/** QEMU's QMP reference; its anchors are `#<kind>-QMP-<module>.<name>`. */
export const QMP_REFERENCE_URL = 'https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html';

function referenceLink(options: RenderOptions, kind: 'command' | 'event', name: string, indent: string): string[] {
  const module = options.qapiModules?.[`${kind}:${name}`];
  return module ? [`${indent} * @see ${QMP_REFERENCE_URL}#${kind}-QMP-${module}.${name}`] : [];
}

type Named = Exclude<SchemaType, { kind: 'builtin' } | { kind: 'array' }>;

const RESERVED = new Set(['QemuCommands', 'QemuEvents', 'QemuCommandNames', 'EmptyObject', 'qemuCommandNames', 'generatedFrom']);

/** `set_link` → `SetLink`, `query-cpus-fast` → `QueryCpusFast`, `BLOCK_JOB_READY` → `BlockJobReady`. */
export function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => (/^[A-Z0-9]+$/.test(w) ? w.toLowerCase() : w))
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** `set_link` → `setLink`. */
export function camelCase(name: string): string {
  const p = pascalCase(name);
  return p[0]!.toLowerCase() + p.slice(1);
}

function isEmptyObject(t: SchemaType): boolean {
  return t.kind === 'object' && t.members.size === 0 && t.variants.size === 0;
}

function propertyName(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : `'${name}'`;
}

function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function featureTags(f: Features, indent: string): string[] {
  const lines: string[] = [];
  if (f.deprecated) lines.push(`${indent} * @deprecated QEMU marks this deprecated.`);
  if (f.unstable) lines.push(`${indent} * @experimental QEMU marks this unstable: it may change or go away without notice.`);
  const other = f.features.filter((x) => x !== 'deprecated' && x !== 'unstable');
  if (other.length) lines.push(`${indent} * Features: ${other.map((x) => `\`${x}\``).join(', ')}.`);
  return lines;
}

function docBlock(lines: string[], indent = ''): string {
  if (lines.length === 0) return '';
  if (lines.length === 1 && !lines[0]!.includes(' * @')) return `${indent}/** ${lines[0]!.replace(/^\s*\* /, '')} */\n`;
  return `${indent}/**\n${lines.map((l) => (l.trimStart().startsWith('*') ? l : `${indent} * ${l}`)).join('\n')}\n${indent} */\n`;
}

/** Where a type was reached from: its candidate name and a readable use site for its doc comment. */
interface Candidate {
  name: string;
  where: string;
}

/**
 * Names every object, enum and alternate breadth-first from the commands and events (sorted), so a
 * type takes its shallowest, then shortest, then alphabetically first use-site name.
 */
function nameTypes(model: SchemaModel): { names: Map<Named, string>; where: Map<Named, string> } {
  const names = new Map<Named, string>();
  const where = new Map<Named, string>();
  const taken = new Set(RESERVED);
  let level = new Map<Named, Candidate[]>();

  const offer = (next: Map<Named, Candidate[]>, t: SchemaType, c: Candidate): void => {
    if (t.kind === 'builtin' || isEmptyObject(t)) return;
    if (t.kind === 'array') return offer(next, t.element, { name: `${c.name}Item`, where: `element of ${c.where}` });
    if (names.has(t)) return;
    const list = next.get(t);
    if (list) list.push(c);
    else next.set(t, [c]);
  };

  for (const cmd of [...model.commands.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = pascalCase(cmd.name);
    offer(level, cmd.args, { name: `${p}Arguments`, where: `arguments of \`${cmd.name}\`` });
    if (cmd.returns.kind === 'array') offer(level, cmd.returns.element, { name: `${p}Item`, where: `element of \`${cmd.name}\`'s return` });
    else offer(level, cmd.returns, { name: `${p}Return`, where: `return of \`${cmd.name}\`` });
  }
  for (const ev of [...model.events.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    offer(level, ev.data, { name: `${pascalCase(ev.name)}Event`, where: `data of event \`${ev.name}\`` });
  }

  const better = (a: Candidate, b: Candidate) =>
    a.name.length !== b.name.length ? a.name.length < b.name.length : a.name < b.name;

  while (level.size > 0) {
    const chosen = [...level.entries()].map(([t, cands]) => {
      let best = cands[0]!;
      for (const c of cands) if (better(c, best)) best = c;
      return { t, best };
    });
    // Ties on a name are broken by the masked id, which is stable for a given schema.
    chosen.sort((a, b) => (a.best.name !== b.best.name ? (a.best.name < b.best.name ? -1 : 1) : Number(a.t.id) - Number(b.t.id)));
    for (const { t, best } of chosen) {
      let name = best.name;
      for (let i = 2; taken.has(name) || (t.kind === 'object' && t.tag !== undefined && taken.has(`${name}Base`)); i++) {
        name = `${best.name}${i}`;
      }
      taken.add(name);
      if (t.kind === 'object' && t.tag !== undefined) taken.add(`${name}Base`);
      names.set(t, name);
      where.set(t, best.where);
    }
    const next = new Map<Named, Candidate[]>();
    for (const { t } of chosen) {
      const name = names.get(t)!;
      const w = where.get(t)!;
      if (t.kind === 'object') {
        for (const m of t.members.values()) offer(next, m.type, { name: `${name}${pascalCase(m.name)}`, where: `\`${m.name}\` in ${w}` });
        for (const [tagValue, branch] of t.variants) {
          offer(next, branch, { name: `${name}${pascalCase(tagValue)}`, where: `${w} when \`${t.tag}\` is \`${tagValue}\`` });
        }
      } else if (t.kind === 'alternate') {
        for (const m of t.members) offer(next, m, { name: `${name}${pascalCase(m.kind)}`, where: `${m.kind} form of ${w}` });
      }
    }
    level = next;
  }
  return { names, where };
}

/** Renders the module. */
export function renderModule(model: SchemaModel, options: RenderOptions): string {
  const { names, where } = nameTypes(model);
  const ref = (t: SchemaType): string => {
    switch (t.kind) {
      case 'builtin':
        switch (t.jsonType) {
          case 'int':
          case 'number':
            return 'number';
          case 'string':
            return 'string';
          case 'boolean':
            return 'boolean';
          case 'null':
            return 'null';
          default:
            return 'unknown';
        }
      case 'array': {
        const inner = ref(t.element);
        return /^[A-Za-z0-9_]+$/.test(inner) ? `${inner}[]` : `Array<${inner}>`;
      }
      default:
        return isEmptyObject(t) ? 'EmptyObject' : names.get(t)!;
    }
  };

  const membersBody = (o: ObjectType, skip?: string): string => {
    let body = '';
    for (const m of o.members.values()) {
      if (m.name === skip) continue;
      body += docBlock(featureTags(m, '  '), '  ');
      body += `  ${propertyName(m.name)}${m.optional ? '?' : ''}: ${ref(m.type)};\n`;
    }
    return body;
  };

  const decls: [string, string][] = [];
  for (const [t, name] of names) {
    const doc = [`Used as ${where.get(t)!}.`];
    let text: string;
    if (t.kind === 'enum') {
      const marked = [...t.valueFeatures].map(
        ([v, f]) => `\`${v}\`: ${[f.deprecated && 'deprecated', f.unstable && 'unstable'].filter(Boolean).join(', ')}`,
      );
      if (marked.length) doc.push(`Marked values: ${marked.join('; ')}.`);
      text = `export type ${name} =\n${t.values.map((v) => `  | ${literal(v)}`).join('\n')};\n`;
    } else if (t.kind === 'alternate') {
      text = `export type ${name} = ${t.members.map(ref).join(' | ')};\n`;
    } else if (t.tag === undefined) {
      text = `export interface ${name} {\n${membersBody(t)}}\n`;
    } else {
      const tag = t.tag;
      const tagType = t.members.get(tag)!.type;
      const allValues = tagType.kind === 'enum' ? tagType.values : [...t.variants.keys()];
      // Tag values sharing a branch type share one arm; values without a branch add no members.
      const arms = new Map<string, string[]>();
      for (const v of allValues) {
        const branch = t.variants.get(v);
        const key = branch && !isEmptyObject(branch) ? names.get(branch)! : '';
        arms.set(key, [...(arms.get(key) ?? []), v]);
      }
      doc.push(`A union on \`${tag}\`: the members allowed depend on its value.`);
      const armText = [...arms].map(([branch, values]) => {
        const tagPart = `{ ${propertyName(tag)}: ${values.map(literal).join(' | ')} }`;
        return `  | (${name}Base & ${tagPart}${branch ? ` & ${branch}` : ''})`;
      });
      text =
        `export interface ${name}Base {\n${membersBody(t, tag)}}\n\n` +
        docBlock([...doc, ...featureTags({ features: [], deprecated: false, unstable: false }, '')]) +
        `export type ${name} =\n${armText.join('\n')};\n`;
      decls.push([name, `/** Members of {@link ${name}} common to every \`${tag}\`. */\n${text}`]);
      continue;
    }
    decls.push([name, docBlock(doc) + text]);
  }

  // Every command gets `XArguments` / `XReturn` and every event `XEvent`, even when the type it uses
  // was named after another use site, so callers can always find them by command name.
  const aliases: [string, string][] = [];
  const declared = new Set(names.values());
  /** Returns the name to refer to: the alias, or the target when the alias name is someone else's. */
  const alias = (name: string, target: string, doc: string): string => {
    if (name === target) return name;
    if (declared.has(name) || RESERVED.has(name)) return target;
    declared.add(name);
    aliases.push([name, `/** ${doc} */\nexport type ${name} = ${target};\n`]);
    return name;
  };

  const commands = [...model.commands.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const events = [...model.events.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  let commandMap = '';
  let nameTable = '';
  const camelTaken = new Set<string>();
  for (const cmd of commands) {
    const p = pascalCase(cmd.name);
    const args = isEmptyObject(cmd.args) ? 'undefined' : alias(`${p}Arguments`, ref(cmd.args), `Arguments of \`${cmd.name}\`.`);
    const ret =
      cmd.returns.kind === 'builtin' || isEmptyObject(cmd.returns)
        ? ref(cmd.returns)
        : alias(`${p}Return`, ref(cmd.returns), `Return value of \`${cmd.name}\`.`);
    const link = referenceLink(options, 'command', cmd.name, '  ');
    const doc = [`\`${cmd.name}\`${cmd.allowOob ? ' (may run out-of-band)' : ''}`, ...featureTags(cmd, '  '), ...link];
    commandMap += docBlock(doc, '  ');
    commandMap += `  ${literal(cmd.name)}: { args: ${args}; returns: ${ret} };\n`;
    let camel = camelCase(cmd.name);
    for (let i = 2; camelTaken.has(camel); i++) camel = `${camelCase(cmd.name)}${i}`;
    camelTaken.add(camel);
    nameTable += docBlock([`\`${cmd.name}\``, ...featureTags(cmd, '  '), ...link], '  ');
    nameTable += `  ${camel}: ${literal(cmd.name)},\n`;
  }
  let eventMap = '';
  for (const ev of events) {
    const data = isEmptyObject(ev.data) ? 'undefined' : alias(`${pascalCase(ev.name)}Event`, ref(ev.data), `Data of event \`${ev.name}\`.`);
    eventMap += docBlock([`\`${ev.name}\`${data === 'undefined' ? ' (carries no data)' : ''}`, ...featureTags(ev, '  '), ...referenceLink(options, 'event', ev.name, '  ')], '  ');
    eventMap += `  ${ev.name}: ${data};\n`;
  }

  const v = model.version;
  const header =
    `// generated by libqemu gen from QEMU ${options.qemuVersion} — do not edit\n` +
    (options.qemuPackage ? `// QEMU package: ${options.qemuPackage}\n` : '') +
    `// ${model.commands.size} commands, ${model.events.size} events. Regenerate with ${options.regenerate ?? '\`libqemu gen\` (see README)'}.\n` +
    `/* eslint-disable */\n`;
  const all = [...decls, ...aliases].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return (
    header +
    `\n/** The QEMU this module was generated from. */\n` +
    `export const generatedFrom = ${JSON.stringify({ qemu: v?.qemu ?? null, package: v?.package ?? options.qemuPackage ?? null })} as const;\n` +
    `\n/** What a command with nothing to return gives back. */\nexport type EmptyObject = Record<string, never>;\n` +
    `\n/** Command name → its arguments (\`undefined\` when it takes none) and its return value. */\n` +
    `export type QemuCommands = {\n${commandMap}};\n` +
    `\n/** Event name → its \`data\` (\`undefined\` when QEMU sends none). */\n` +
    `export type QemuEvents = {\n${eventMap}};\n` +
    `\n/** camelCase wrapper name → command name, for \`client.commands\`. */\n` +
    `export const qemuCommandNames = {\n${nameTable}} as const;\n` +
    `export type QemuCommandNames = typeof qemuCommandNames;\n` +
    all.map(([, text]) => `\n${text}`).join('')
  );
}
