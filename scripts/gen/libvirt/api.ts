/**
 * Reads libvirt's API description (the checked-in libvirt-api.xml and libvirt-qemu-api.xml that Debian's
 * libvirt-dev installs under /usr/share/libvirt/api/) into plain objects for the generator.
 */
import { readFileSync } from 'node:fs';
import { DOMParser, type Element } from '@xmldom/xmldom';

export interface ApiArg {
  name: string;
  type: string;
  info: string;
}

export interface ApiFunction {
  name: string;
  /** The shared object that exports it. */
  lib: 'libvirt.so.0' | 'libvirt-qemu.so.0';
  file: string;
  version: string;
  info: string;
  returns: { type: string; info: string };
  args: ApiArg[];
}

export interface ApiEnum {
  name: string;
  type: string;
  value: number;
  info: string;
  file: string;
  version: string;
}

export interface ApiMacro {
  name: string;
  string?: string;
  raw?: string;
  info: string;
}

export interface ApiStruct {
  name: string;
  fields: { name: string; type: string; info: string }[];
}

export interface Api {
  functions: ApiFunction[];
  functypes: Map<string, { name: string; args: ApiArg[]; returns: string; info: string }>;
  enums: ApiEnum[];
  macros: Map<string, ApiMacro>;
  structs: Map<string, ApiStruct>;
  /** typedef name → its C type, e.g. virDomainInfoPtr → `virDomainInfo *`. */
  typedefs: Map<string, string>;
}

function children(parent: Element, tag: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && (n as Element).tagName === tag) out.push(n as Element);
  return out;
}

function text(el: Element | undefined): string {
  return (el?.textContent ?? '').trim();
}

function args(el: Element): ApiArg[] {
  return children(el, 'arg').map((a) => ({ name: a.getAttribute('name')!, type: a.getAttribute('type')!, info: a.getAttribute('info') ?? '' }));
}

export function readApi(files: { path: string; lib: ApiFunction['lib'] }[]): Api {
  const api: Api = { functions: [], functypes: new Map(), enums: [], macros: new Map(), structs: new Map(), typedefs: new Map() };
  const rawEnums: (Omit<ApiEnum, 'value'> & { raw: string })[] = [];
  for (const { path, lib } of files) {
    const doc = new DOMParser().parseFromString(readFileSync(path, 'utf8'), 'text/xml');
    const symbols = children(doc.documentElement as unknown as Element, 'symbols')[0];
    if (!symbols) throw new Error(`${path}: no <symbols>`);
    for (const el of children(symbols, 'function')) {
      const ret = children(el, 'return')[0]!;
      api.functions.push({
        name: el.getAttribute('name')!,
        lib,
        file: el.getAttribute('file') ?? '',
        version: el.getAttribute('version') ?? '',
        info: text(children(el, 'info')[0]),
        returns: { type: ret.getAttribute('type')!, info: ret.getAttribute('info') ?? '' },
        args: args(el),
      });
    }
    for (const el of children(symbols, 'functype')) {
      api.functypes.set(el.getAttribute('name')!, {
        name: el.getAttribute('name')!,
        args: args(el),
        returns: children(el, 'return')[0]!.getAttribute('type')!,
        info: text(children(el, 'info')[0]),
      });
    }
    for (const el of children(symbols, 'enum')) {
      rawEnums.push({
        name: el.getAttribute('name')!,
        type: el.getAttribute('type') ?? '',
        raw: el.getAttribute('value')!,
        info: el.getAttribute('info') ?? '',
        file: el.getAttribute('file') ?? '',
        version: el.getAttribute('version') ?? '',
      });
    }
    for (const el of children(symbols, 'macro')) {
      const m: ApiMacro = { name: el.getAttribute('name')!, info: text(children(el, 'info')[0]) };
      if (el.hasAttribute('string')) m.string = el.getAttribute('string')!;
      if (el.hasAttribute('raw')) m.raw = el.getAttribute('raw')!;
      api.macros.set(m.name, m);
    }
    for (const el of children(symbols, 'struct')) {
      api.structs.set(el.getAttribute('name')!, {
        name: el.getAttribute('name')!,
        fields: children(el, 'field').map((f) => ({ name: f.getAttribute('name')!, type: f.getAttribute('type')!, info: f.getAttribute('info') ?? '' })),
      });
    }
    for (const el of children(symbols, 'typedef')) api.typedefs.set(el.getAttribute('name')!, el.getAttribute('type')!);
  }
  // Some enum values name another enum (aliases): resolve them.
  const byName = new Map(rawEnums.map((e) => [e.name, e]));
  const resolve = (raw: string, depth = 0): number => {
    if (/^-?\d+$/.test(raw)) return Number(raw);
    const target = byName.get(raw);
    if (!target || depth > 8) throw new Error(`enum value ${raw} does not resolve`);
    return resolve(target.raw, depth + 1);
  };
  api.enums = rawEnums.map(({ raw, ...e }) => ({ ...e, value: resolve(raw) }));
  api.functions.sort((a, b) => (a.name < b.name ? -1 : 1));
  api.enums.sort((a, b) => (a.type !== b.type ? (a.type < b.type ? -1 : 1) : a.value !== b.value ? a.value - b.value : a.name < b.name ? -1 : 1));
  return api;
}

/** Evaluates the integer macros struct sizes use (`80`, `(256 + 1)`, another macro's name). */
export function macroNumber(api: Api, name: string, depth = 0): number {
  const m = api.macros.get(name);
  if (!m?.raw || depth > 4) throw new Error(`macro ${name} is not a number`);
  const expr = m.raw.replace(/[A-Z_][A-Z0-9_]+/g, (ref) => String(macroNumber(api, ref, depth + 1)));
  if (!/^[\d\s()+]+$/.test(expr)) throw new Error(`macro ${name} = ${m.raw} is not a simple sum`);
  return expr.replace(/[()\s]/g, '').split('+').reduce((s, x) => s + Number(x), 0);
}
