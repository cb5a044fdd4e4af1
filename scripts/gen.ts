/**
 * `npm run gen`: regenerates everything generated in the repository from the inputs checked in under
 * scripts/gen/ (the QAPI schema → src/generated/index.ts; libvirt's API XML → src/generated/libvirt/).
 * test/schema/generate.test.ts and test/libvirt/generated.test.ts fail when the checked-in output differs.
 */
import { generateLibvirt } from './gen-libvirt.js';
import { generateQapiTypes } from './gen-types.js';

const qapi = await generateQapiTypes({ out: new URL('../src/generated/index.ts', import.meta.url).pathname });
console.log(`src/generated/index.ts: QEMU ${qapi.qemuVersion}, ${qapi.model.commands.size} commands, ${qapi.model.events.size} events`);
const libvirt = await generateLibvirt({ write: true });
console.log(`src/generated/libvirt/: ${libvirt.summary}`);
