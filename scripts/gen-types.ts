/**
 * Regenerates src/generated/index.ts from the installed QEMU (or the one given):
 *
 *   npx tsx scripts/gen-types.ts [--qemu /usr/bin/qemu-system-x86_64] [--out src/generated/index.ts]
 *
 * The library's own `libqemu gen` command does the same for any QEMU, socket or saved schema.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateTypes } from '../src/schema/generate.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    qemu: { type: 'string', default: 'qemu-system-x86_64' },
    out: { type: 'string', default: join(root, 'src/generated/index.ts') },
    'save-schema': { type: 'string' },
  },
});
const result = await generateTypes({
  source: { qemu: values.qemu! },
  output: values.out!,
  ...(values['save-schema'] ? { saveSchema: values['save-schema'] } : {}),
});
console.log(
  `wrote ${values.out} from QEMU ${result.qemuVersion}: ${result.model.commands.size} commands, ${result.model.events.size} events`,
);
