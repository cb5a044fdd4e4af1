/**
 * Regenerates src/generated/index.ts from the QAPI schema checked in under scripts/gen/qemu/ (never from
 * the host's QEMU, so every host produces the same bytes). `npm run gen` runs this.
 *
 *   npx tsx scripts/gen-types.ts                      # from the checked-in schema
 *   npx tsx scripts/gen-types.ts --qemu BINARY --save-schema scripts/gen/qemu/qemu-X.Y.Z.schema.json
 *                                                     # re-pin: read another QEMU's schema and save it
 *
 * The library's own `libqemu gen` command does the same for any QEMU, socket or saved schema.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateTypes, type SchemaSource } from '../src/schema/generate.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The pinned schema the checked-in types come from (QEMU 7.2.22, Debian 1:7.2+dfsg-7+deb12u18+b3). */
export const PINNED_SCHEMA = join(root, 'scripts/gen/qemu/qemu-7.2.22.schema.json');
/** command/event → QAPI module, for the QMP reference links (see scripts/derive-qapi-modules.ts). */
export const QAPI_MODULES = join(root, 'scripts/gen/qemu/qapi-modules.json');

export async function generateQapiTypes(options: { source?: SchemaSource; out?: string; saveSchema?: string } = {}) {
  const qapiModules = JSON.parse(readFileSync(QAPI_MODULES, 'utf8')) as Record<string, string>;
  return generateTypes({
    source: options.source ?? { file: PINNED_SCHEMA },
    ...(options.out ? { output: options.out } : {}),
    ...(options.saveSchema ? { saveSchema: options.saveSchema } : {}),
    render: { qapiModules, regenerate: '`npm run gen` from scripts/gen/qemu/' },
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      qemu: { type: 'string' },
      out: { type: 'string', default: join(root, 'src/generated/index.ts') },
      'save-schema': { type: 'string' },
    },
  });
  const result = await generateQapiTypes({
    ...(values.qemu ? { source: { qemu: values.qemu } } : {}),
    out: values.out!,
    ...(values['save-schema'] ? { saveSchema: values['save-schema'] } : {}),
  });
  console.log(
    `wrote ${relative(process.cwd(), values.out!)} from QEMU ${result.qemuVersion}: ${result.model.commands.size} commands, ${result.model.events.size} events`,
  );
}
