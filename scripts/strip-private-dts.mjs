// Removes private members from the built declaration files. tsc keeps `private x;` lines in .d.ts
// (for nominal typing), but they are implementation details a consumer should neither see nor rely
// on. A private constructor stays: it says the class is not constructed with `new`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PRIVATE_MEMBER = /^\s+private (?:static )?(?:readonly )?(?:get |set )?[\w$]+(?:\(\))?;\r?\n/gm;

function* declarationFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* declarationFiles(path);
    else if (entry.name.endsWith('.d.ts')) yield path;
  }
}

const root = process.argv[2] ?? 'dist';
let removed = 0;
for (const file of declarationFiles(root)) {
  const text = readFileSync(file, 'utf8');
  const stripped = text.replace(PRIVATE_MEMBER, () => {
    removed++;
    return '';
  });
  if (stripped !== text) writeFileSync(file, stripped);
}
process.stderr.write(`strip-private-dts: removed ${removed} private members from ${root}/**/*.d.ts\n`);
