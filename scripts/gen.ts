/**
 * `npm run gen`: regenerates everything generated in the repository from the inputs checked in under
 * scripts/gen/ (the QAPI schema → src/generated/index.ts; libvirt's API XML → src/generated/libvirt/).
 * CI runs it and fails if the tree differs afterwards (`git diff --exit-code`).
 */
import { generateQapiTypes } from './gen-types.js';

const qapi = await generateQapiTypes({ out: new URL('../src/generated/index.ts', import.meta.url).pathname });
console.log(`src/generated/index.ts: QEMU ${qapi.qemuVersion}, ${qapi.model.commands.size} commands, ${qapi.model.events.size} events`);
