/**
 * The public surface of each package entry point, as TypeScript sees it: every exported name with
 * whether it is a value (class, function, constant) or only a type. Names declared in generated code
 * are counted per generated file instead of listed, so regenerating does not churn the list.
 * `npx tsx scripts/public-surface.ts --write` rewrites test/architecture/public-surface.txt.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** package.json "exports" subpath → source file. */
export function entryPoints(): Map<string, string> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | { types?: string }> };
  const out = new Map<string, string>();
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const types = typeof target === 'string' ? target : target.types;
    if (!types || !types.endsWith('.d.ts')) continue;
    out.set(subpath, join(root, types.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts')));
  }
  return out;
}

export function describeSurface(): string {
  const entries = entryPoints();
  const program = ts.createProgram([...entries.values()], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const lines: string[] = [];
  for (const [subpath, file] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
    const source = program.getSourceFile(file);
    if (!source) throw new Error(`entry point ${subpath}: ${file} not found`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    const exports = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
    const generated = new Map<string, number>();
    const names: string[] = [];
    for (const sym of exports) {
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      const declFile = target.declarations?.[0]?.getSourceFile().fileName ?? '';
      const rel = relative(root, declFile);
      if (rel.startsWith('src/generated/')) {
        generated.set(rel, (generated.get(rel) ?? 0) + 1);
        continue;
      }
      const isValue = (target.flags & ts.SymbolFlags.Value) !== 0;
      names.push(`${sym.getName()}${isValue ? '' : ' (type)'}`);
    }
    lines.push(`## ${subpath}`);
    for (const n of names.sort()) lines.push(n);
    for (const [f, count] of [...generated].sort()) lines.push(`+ ${count} generated names from ${f}`);
    lines.push('');
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = describeSurface();
  if (process.argv.includes('--write')) writeFileSync(join(root, 'test/architecture/public-surface.txt'), text);
  else process.stdout.write(text);
}
