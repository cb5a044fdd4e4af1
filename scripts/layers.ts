/**
 * The layer rule of libqemu, checked: every import in src/ and native/ is read (static, type-only,
 * re-exports and dynamic import()), each file is placed in a layer by its folder, and the check reports
 * every import that points up and every file-level import cycle. Run it with
 * `npx tsx scripts/layers.ts` to print the folder → folders table; test/architecture/layers.test.ts
 * runs it in the suite.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layers, lowest first. A file may import its own layer and any layer listed before it; `src/testing`
 * and the package root (`src/index.ts`) sit on top. A folder not listed here fails the check, so a new
 * folder has to be placed deliberately.
 */
export const LAYERS: ReadonlyArray<{ name: string; folders: readonly string[] }> = [
  { name: 'common', folders: ['src/common'] },
  { name: 'qmp', folders: ['src/qmp'] },
  // the guest agent's protocol and client (its libvirt transport lives in hybrid)
  { name: 'agent', folders: ['src/agent'] },
  // generated code sits with the layer that uses it: libvirt's API here, QAPI types with schema
  { name: 'libvirt', folders: ['native', 'src/libvirt', 'src/generated/libvirt'] },
  { name: 'domain', folders: ['src/domain'] },
  { name: 'schema', folders: ['src/schema', 'src/generated'] },
  { name: 'migration', folders: ['src/migration'] },
  { name: 'hybrid', folders: ['src/hybrid'] },
  { name: 'proxy', folders: ['src/proxy'] },
  { name: 'testing', folders: ['src/testing'] },
  { name: 'cli', folders: ['src/cli'] },
  { name: 'root', folders: ['src/index.ts'] },
];

export interface ImportEdge {
  /** Importing file, relative to the repository root (forward slashes). */
  from: string;
  /** Imported file, relative to the repository root. */
  to: string;
  /** Only `import type` / `export type` (erased at run time). */
  typeOnly: boolean;
}

export interface LayerViolation {
  edge: ImportEdge;
  fromLayer: string;
  toLayer: string;
}

export interface LayerReport {
  files: string[];
  edges: ImportEdge[];
  /** Imports that point to a higher layer. */
  upward: LayerViolation[];
  /** Files that fall in no layer. */
  unplaced: string[];
  /** Each cycle as the files of one strongly connected component (sorted). */
  cycles: string[][];
  /** folder → the folders it imports (outside itself), for the printed table. */
  table: Map<string, Set<string>>;
}

const toPosix = (p: string) => p.split(sep).join('/');

/** The layer a repository-relative path belongs to (longest matching folder wins). */
export function layerOf(file: string, layers = LAYERS): { name: string; rank: number } | undefined {
  let best: { name: string; rank: number; len: number } | undefined;
  layers.forEach((layer, rank) => {
    for (const folder of layer.folders) {
      if ((file === folder || file.startsWith(`${folder}/`)) && (!best || folder.length > best.len)) best = { name: layer.name, rank, len: folder.length };
    }
  });
  return best && { name: best.name, rank: best.rank };
}

/** The folder a file is listed under in the table (`src/hybrid`, `native`, `src/generated/libvirt`, `src/index.ts`). */
export function folderOf(file: string, layers = LAYERS): string {
  const nested = layers.flatMap((l) => l.folders).filter((f) => f.split('/').length > 2 && file.startsWith(`${f}/`));
  if (nested.length > 0) return nested.sort((a, b) => b.length - a.length)[0]!;
  const parts = file.split('/');
  if (parts[0] === 'src' && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  if (parts[0] === 'src') return file;
  return parts[0] ?? file;
}

/** The relative module specifiers of one file, each with whether it is used only for types. */
export function importsOf(fileName: string, text: string): Array<{ specifier: string; typeOnly: boolean }> {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: Array<{ specifier: string; typeOnly: boolean }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      out.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      const typeOnly = node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly));
      out.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) out.push({ specifier: arg.text, typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out.filter((i) => i.specifier.startsWith('.'));
}

/** Maps `./x.js` (as written under NodeNext) to the repository file it names. */
function resolveSpecifier(root: string, from: string, specifier: string, exists: (p: string) => boolean): string | undefined {
  const base = resolve(root, dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')];
  const hit = candidates.find(exists);
  return hit === undefined ? undefined : toPosix(relative(root, hit));
}

/** Every .ts file under the given repository folders (test files are not part of any layer). */
export function listSources(root: string, folders: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(toPosix(relative(root, path)));
    }
  };
  for (const folder of folders) walk(join(root, folder));
  return out.sort();
}

/** Strongly connected components of more than one file, or a file that imports itself (Tarjan). */
export function findCycles(files: readonly string[], edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) next.get(e.from)?.push(e.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = component.length === 1 && (next.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) cycles.push(component.sort());
    }
  };
  for (const f of files) if (!index.has(f)) connect(f);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/**
 * Checks a set of files given as path → source text (relative paths, forward slashes). The files are
 * the whole world: an import of a file outside it is ignored (node_modules, node:*).
 */
export function checkLayers(sources: ReadonlyMap<string, string>, layers = LAYERS): LayerReport {
  const files = [...sources.keys()].sort();
  const edges: ImportEdge[] = [];
  for (const from of files) {
    for (const { specifier, typeOnly } of importsOf(from, sources.get(from)!)) {
      const to = resolveSpecifier('/', from, specifier, (p) => sources.has(p.slice(1)));
      if (to !== undefined && to !== '') edges.push({ from, to, typeOnly });
    }
  }
  const upward: LayerViolation[] = [];
  const unplaced = files.filter((f) => layerOf(f, layers) === undefined);
  const table = new Map<string, Set<string>>();
  for (const f of files) table.set(folderOf(f, layers), table.get(folderOf(f, layers)) ?? new Set());
  for (const edge of edges) {
    const a = layerOf(edge.from, layers);
    const b = layerOf(edge.to, layers);
    if (a && b && b.rank > a.rank) upward.push({ edge, fromLayer: a.name, toLayer: b.name });
    const fa = folderOf(edge.from, layers);
    const fb = folderOf(edge.to, layers);
    if (fa !== fb) table.get(fa)!.add(fb);
  }
  return { files, edges, upward, unplaced, cycles: findCycles(files, edges), table };
}

/** Reads src/ and native/ of the repository at `root` and checks them. */
export function checkRepository(root: string): LayerReport {
  const sources = new Map<string, string>();
  for (const file of listSources(root, ['src', 'native'].filter((d) => statSync(join(root, d), { throwIfNoEntry: false })?.isDirectory()))) {
    sources.set(file, readFileSync(join(root, file), 'utf8'));
  }
  return checkLayers(sources);
}

/** The folder → folders table as Markdown, folders in layer order. */
export function formatTable(report: LayerReport, layers = LAYERS): string {
  const rank = (folder: string) => layerOf(folder.endsWith('.ts') ? folder : `${folder}/x.ts`, layers)?.rank ?? layers.length;
  const order = (a: string, b: string) => rank(a) - rank(b) || a.localeCompare(b);
  const lines = ['| folder | layer | imports |', '|---|---|---|'];
  for (const folder of [...report.table.keys()].sort(order)) {
    const layer = layerOf(folder.endsWith('.ts') ? folder : `${folder}/x.ts`, layers)?.name ?? '(none)';
    lines.push(`| ${folder} | ${layer} | ${[...report.table.get(folder)!].sort(order).join(', ') || '–'} |`);
  }
  return lines.join('\n');
}

/** The problems of a report as lines a reader can act on (empty when the layers hold). */
export function describeProblems(report: LayerReport): string[] {
  return [
    ...report.unplaced.map((f) => `${f}: in no layer (add its folder to LAYERS in scripts/layers.ts)`),
    ...report.upward.map((v) => `${v.edge.from} (${v.fromLayer}) imports ${v.edge.to} (${v.toLayer})${v.edge.typeOnly ? ' [type only]' : ''}: points up`),
    ...report.cycles.map((c) => `import cycle: ${c.join(' ↔ ')}`),
  ];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = checkRepository(resolve(dirname(fileURLToPath(import.meta.url)), '..'));
  console.log(formatTable(report));
  const problems = describeProblems(report);
  for (const p of problems) console.error(p);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
