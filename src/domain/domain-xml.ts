import { randomUUID } from 'node:crypto';
import { DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import { InvalidArgumentError } from '../common/errors.js';
import { DomainXmlError } from './errors.js';

/** libvirt's QEMU namespace for `<qemu:commandline>` (docs/drvqemu.rst). */
export const QEMU_XML_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** The longest UNIX socket path the kernel accepts (sun_path is 108 bytes including the NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A second QMP monitor found in (or added to) a domain's `<qemu:commandline>`. */
export interface MonitorSocketSpec {
  /** The UNIX socket path QEMU listens on. */
  path: string;
  /** `-qmp unix:PATH,…` or `-chardev socket,id=ID,path=PATH,…` + `-mon chardev=ID,mode=control`. */
  form: 'qmp' | 'chardev';
  /** The chardev id (chardev form only). */
  chardevId?: string;
}

/**
 * A libvirt domain XML, edited through a real DOM: names, paths and values are escaped by the
 * serializer, and the QEMU namespace is declared once on <domain>, never spliced in as text.
 */
export class DomainXml {
  private constructor(private readonly doc: Document) {}

  static parse(xml: string): DomainXml {
    if (typeof xml !== 'string' || xml.trim() === '') {
      throw new InvalidArgumentError('domain XML must be a non-empty string', {
        hint: 'pass the <domain …>…</domain> document you would give to `virsh define`',
      });
    }
    let doc: Document;
    try {
      doc = new DOMParser({
        onError: (level, message) => {
          if (level !== 'warning') throw new Error(message);
        },
      }).parseFromString(xml, 'text/xml');
    } catch (err) {
      throw new DomainXmlError(`domain XML is not well-formed: ${(err as Error).message}`, { hint: 'fix the XML (xmllint --noout file.xml shows where)', cause: err });
    }
    const root = doc.documentElement;
    if (!root || root.localName !== 'domain' || (root.namespaceURI ?? null) !== null) {
      throw new DomainXmlError(`domain XML must have <domain> as its root element, found <${root?.tagName ?? 'nothing'}>`, { hint: 'pass a libvirt domain definition' });
    }
    return new DomainXml(doc);
  }

  private get root(): Element {
    return this.doc.documentElement!;
  }

  /** The text of a direct child of <domain>, e.g. `name` or `uuid`. */
  private childText(name: string): string | undefined {
    const el = this.directChild(this.root, null, name);
    const text = el?.textContent?.trim();
    return text ? text : undefined;
  }

  get name(): string | undefined {
    return this.childText('name');
  }

  get uuid(): string | undefined {
    return this.childText('uuid');
  }

  /** Gives the domain a UUID when it has none (so its monitor path can be named after it before define). */
  ensureUuid(): string {
    const existing = this.uuid;
    if (existing) return existing;
    const uuid = randomUUID();
    const el = this.doc.createElement('uuid');
    el.appendChild(this.doc.createTextNode(uuid));
    const nameEl = this.directChild(this.root, null, 'name');
    this.root.insertBefore(el, nameEl ? nameEl.nextSibling : this.root.firstChild);
    return uuid;
  }

  /** The `<qemu:arg value=…>` values, in order, across every `<qemu:commandline>`. */
  qemuArgs(): string[] {
    const args: string[] = [];
    for (const cmdline of this.commandlines()) {
      for (const arg of this.children(cmdline, QEMU_XML_NS, 'arg')) {
        args.push(arg.getAttribute('value') ?? '');
      }
    }
    return args;
  }

  /** Every second QMP monitor on a UNIX socket declared in `<qemu:commandline>`. */
  monitorSockets(): MonitorSocketSpec[] {
    return findMonitorsInArgs(this.qemuArgs());
  }

  /**
   * Adds a second QMP monitor listening on `path` (QEMU creates the socket; `wait=off` so the guest
   * starts without a client). Returns the spec added; a monitor already on that path is an error.
   */
  addMonitorSocket(path: string, options: { form?: 'qmp' | 'chardev'; chardevId?: string } = {}): MonitorSocketSpec {
    validateSocketPath(path);
    if (this.monitorSockets().some((m) => m.path === path)) {
      throw new DomainXmlError(`the domain already has a QMP monitor on ${path}`, { hint: 'use it as it is, or pick another path' });
    }
    const form = options.form ?? 'qmp';
    const cmdline = this.ensureCommandline();
    const escaped = escapeQemuOptValue(path);
    if (form === 'qmp') {
      this.appendArgs(cmdline, ['-qmp', `unix:${escaped},server=on,wait=off`]);
      return { path, form };
    }
    const chardevId = options.chardevId ?? this.freeChardevId();
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(chardevId)) {
      throw new InvalidArgumentError(`chardev id '${chardevId}' is not a valid QEMU id`, { hint: 'use a letter followed by letters, digits, "-", "_" or "."' });
    }
    this.appendArgs(cmdline, ['-chardev', `socket,id=${chardevId},path=${escaped},server=on,wait=off`, '-mon', `chardev=${chardevId},mode=control`]);
    return { path, form, chardevId };
  }

  /**
   * Points the monitor on `oldPath` at `newPath` (e.g. the destination's directory in a migration,
   * where the same path on both sides breaks the monitor). Returns false when no monitor uses oldPath.
   */
  replaceMonitorSocketPath(oldPath: string, newPath: string): boolean {
    validateSocketPath(newPath);
    let replaced = false;
    for (const cmdline of this.commandlines()) {
      const argEls = this.children(cmdline, QEMU_XML_NS, 'arg');
      for (let i = 0; i + 1 < argEls.length; i++) {
        const flag = argEls[i]!.getAttribute('value') ?? '';
        const valueEl = argEls[i + 1]!;
        const value = valueEl.getAttribute('value') ?? '';
        const rewritten = rewriteMonitorArg(flag, value, oldPath, newPath);
        if (rewritten !== undefined) {
          valueEl.setAttribute('value', rewritten);
          replaced = true;
        }
      }
    }
    return replaced;
  }

  toString(): string {
    return new XMLSerializer().serializeToString(this.doc);
  }

  private commandlines(): Element[] {
    return this.children(this.root, QEMU_XML_NS, 'commandline');
  }

  private ensureCommandline(): Element {
    const existing = this.commandlines()[0];
    if (existing) return existing;
    const prefix = this.declareQemuNamespace();
    const el = this.doc.createElementNS(QEMU_XML_NS, `${prefix}:commandline`);
    // keep the document's trailing indentation last: insert before a final whitespace-only text node
    const last = this.root.lastChild;
    const before = last && last.nodeType === 3 && !last.nodeValue?.trim() ? last : null;
    this.root.insertBefore(this.doc.createTextNode('\n  '), before);
    this.root.insertBefore(el, before);
    if (!before) this.root.appendChild(this.doc.createTextNode('\n'));
    return el;
  }

  /** Declares the QEMU namespace on <domain> (reusing an existing prefix for it) and returns the prefix. */
  private declareQemuNamespace(): string {
    const existing = this.root.lookupPrefix(QEMU_XML_NS);
    if (existing) return existing;
    let prefix = 'qemu';
    for (let n = 2; this.root.lookupNamespaceURI(prefix) !== null; n++) prefix = `qemu${n}`;
    this.root.setAttributeNS(XMLNS_NS, `xmlns:${prefix}`, QEMU_XML_NS);
    return prefix;
  }

  private appendArgs(cmdline: Element, values: string[]): void {
    const prefix = cmdline.prefix ?? this.declareQemuNamespace();
    for (const value of values) {
      const arg = this.doc.createElementNS(QEMU_XML_NS, `${prefix}:arg`);
      arg.setAttribute('value', value);
      cmdline.appendChild(this.doc.createTextNode('\n    '));
      cmdline.appendChild(arg);
    }
    cmdline.appendChild(this.doc.createTextNode('\n  '));
  }

  private freeChardevId(): string {
    const used = new Set(this.monitorSockets().flatMap((m) => (m.chardevId ? [m.chardevId] : [])));
    let id = 'libqemu-qmp';
    for (let n = 2; used.has(id); n++) id = `libqemu-qmp${n}`;
    return id;
  }

  private children(parent: Element, ns: string | null, localName: string): Element[] {
    const out: Element[] = [];
    for (let node = parent.firstChild; node; node = node.nextSibling) {
      if (node.nodeType !== 1) continue;
      const el = node as Element;
      if (el.localName === localName && (el.namespaceURI ?? null) === ns) out.push(el);
    }
    return out;
  }

  private directChild(parent: Element, ns: string | null, localName: string): Element | undefined {
    return this.children(parent, ns, localName)[0];
  }
}

function validateSocketPath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new InvalidArgumentError(`monitor socket path must be an absolute path without NUL bytes, got ${JSON.stringify(path)}`, {
      hint: 'pass an absolute path inside a private (0700) directory, or qmpSocket: true to let libqemu choose one',
    });
  }
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(`monitor socket path is ${Buffer.byteLength(path)} bytes; UNIX sockets allow at most ${MAX_SOCKET_PATH_BYTES}`, {
      hint: 'use a shorter directory (monitorDir option), e.g. under /tmp or /run',
    });
  }
}

/** QemuOpts escaping: a comma inside a value is written as two commas. */
export function escapeQemuOptValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/** Splits a QemuOpts string (`a=1,b=x,,y`) into its parts, undoing the `,,` escape. */
export function splitQemuOpts(opts: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < opts.length; i++) {
    const ch = opts[i]!;
    if (ch === ',') {
      if (opts[i + 1] === ',') {
        current += ',';
        i++;
        continue;
      }
      parts.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  parts.push(current);
  return parts;
}

function optsToMap(parts: string[], impliedKey?: string): Map<string, string> {
  const map = new Map<string, string>();
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (i === 0 && impliedKey) map.set(impliedKey, part);
      else map.set(part, 'on');
    } else {
      map.set(part.slice(0, eq), part.slice(eq + 1));
    }
  });
  return map;
}

function normalizeFlag(flag: string): string {
  return flag.startsWith('--') ? flag.slice(1) : flag;
}

/** Finds the UNIX-socket QMP monitors in a QEMU argument vector. */
export function findMonitorsInArgs(args: string[]): MonitorSocketSpec[] {
  const monitors: MonitorSocketSpec[] = [];
  const socketChardevs = new Map<string, string>();
  const controlMons: string[] = [];
  for (let i = 0; i + 1 < args.length; i++) {
    const flag = normalizeFlag(args[i]!);
    const value = args[i + 1]!;
    if (flag === '-qmp' || flag === '-qmp-pretty') {
      if (value.startsWith('unix:')) {
        const opts = optsToMap(splitQemuOpts(value.slice('unix:'.length)), 'path');
        const path = opts.get('path');
        if (path) monitors.push({ path, form: 'qmp' });
      }
      i++;
    } else if (flag === '-chardev') {
      const parts = splitQemuOpts(value);
      if (parts[0] === 'socket') {
        const opts = optsToMap(parts.slice(1));
        const id = opts.get('id');
        const path = opts.get('path');
        if (id && path) socketChardevs.set(id, path);
      }
      i++;
    } else if (flag === '-mon') {
      const opts = optsToMap(splitQemuOpts(value), 'chardev');
      const chardev = opts.get('chardev');
      if (chardev && opts.get('mode') === 'control') controlMons.push(chardev);
      i++;
    }
  }
  for (const id of controlMons) {
    const path = socketChardevs.get(id);
    if (path) monitors.push({ path, form: 'chardev', chardevId: id });
  }
  return monitors;
}

/** The rewritten value of a `-qmp`/`-chardev` argument whose socket path is oldPath, else undefined. */
function rewriteMonitorArg(flagRaw: string, value: string, oldPath: string, newPath: string): string | undefined {
  const flag = normalizeFlag(flagRaw);
  if ((flag === '-qmp' || flag === '-qmp-pretty') && value.startsWith('unix:')) {
    const parts = splitQemuOpts(value.slice('unix:'.length));
    const idx = parts.findIndex((p, i) => (i === 0 && !p.includes('=') ? p === oldPath : p === `path=${oldPath}`));
    if (idx < 0) return undefined;
    parts[idx] = idx === 0 && !parts[0]!.startsWith('path=') ? newPath : `path=${newPath}`;
    return `unix:${parts.map(escapeQemuOptValue).join(',')}`;
  }
  if (flag === '-chardev') {
    const parts = splitQemuOpts(value);
    if (parts[0] !== 'socket') return undefined;
    const idx = parts.indexOf(`path=${oldPath}`);
    if (idx < 0) return undefined;
    parts[idx] = `path=${newPath}`;
    return parts.map(escapeQemuOptValue).join(',');
  }
  return undefined;
}
