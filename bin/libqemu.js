#!/usr/bin/env node
// The `libqemu` command. An installed package runs its build (dist/). A dev checkout runs the
// TypeScript sources through tsx's ESM loader when there is no build or the sources are newer than
// it, so `npx libqemu …` works right after `npm ci`, and never runs a stale build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'src', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function useBuild() {
  if (!existsSync(built)) return false;
  if (!existsSync(source)) return true;
  return statSync(built).mtimeMs >= newestMtime(join(root, 'src'));
}

let entry = built;
if (!useBuild()) {
  if (!existsSync(source)) {
    process.stderr.write('libqemu: neither a build (dist/) nor the sources (src/) were found next to this script\n');
    process.exit(7);
  }
  const { register } = await import('tsx/esm/api');
  register();
  entry = source;
}
const { main } = await import(pathToFileURL(entry).href);
const code = await main(process.argv.slice(2));
// Exit now: nothing is left to do, and a lingering handle must not keep the command alive.
process.exit(code);
