/**
 * One-off helper (not part of `npm run gen`): derives which QAPI module (qapi/<module>.json) defines each
 * command and event, from QEMU's installed reference manual page (qemu-qmp-ref(7)), and writes
 * scripts/gen/qemu/qapi-modules.json. QEMU's introspection does not say where a name is defined, but the
 * QMP reference anchors need it (#command-QMP-<module>.<name>). The page lists definitions under its
 * section titles in module order; the table below maps each title to its module file.
 *
 *   npx tsx scripts/derive-qapi-modules.ts [/usr/share/man/man7/qemu-qmp-ref.7.gz]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const SECTION_MODULE: Record<string, string> = {
  'QMP ERRORS': 'error', 'COMMON DATA TYPES': 'common', 'SOCKET DATA TYPES': 'sockets', 'VM RUN STATE': 'run-state',
  CRYPTOGRAPHY: 'crypto', 'Block core (VM unrelated)': 'block-core', 'Background jobs': 'block-core',
  'Additional block stuff (VM related)': 'block', 'Block device exports': 'block-export', 'CHARACTER DEVICES': 'char',
  'DUMP GUEST MEMORY': 'dump', 'NET DEVICES': 'net', 'RDMA DEVICE': 'rdma', 'ROCKER SWITCH DEVICE': 'rocker',
  'TPM (TRUSTED PLATFORM MODULE) DEVICES': 'tpm', 'REMOTE DESKTOP': 'ui', Spice: 'ui', VNC: 'ui', INPUT: 'ui',
  'USER AUTHORIZATION': 'authz', MIGRATION: 'migration', TRANSACTIONS: 'transaction', TRACING: 'trace',
  'COMPATIBILITY POLICY': 'compat', 'QMP MONITOR CONTROL': 'control', 'QMP INTROSPECTION': 'introspect',
  'QEMU OBJECT MODEL (QOM)': 'qom', 'DEVICE INFRASTRUCTURE (QDEV)': 'qdev', MACHINES: 'machine',
  'RECORD/REPLAY': 'replay', 'YANK FEATURE': 'yank', MISCELLANEA: 'misc', AUDIO: 'audio', ACPI: 'acpi', PCI: 'pci',
  STATISTICS: 'stats', 'VIRTIO DEVICES': 'virtio',
};
/** Definitions of target-specific or included modules that the page files under their includer's title. */
const NAME_MODULE: [RegExp, string][] = [
  [/^(job-.*|JOB_STATUS_CHANGE)$/, 'job'],
  [/^query-cpu-(definitions|model-.*)$/, 'machine-target'],
  [/^(query-sev.*|sev-.*|query-sgx.*|query-gic-capabilities|rtc-reset-reinjection|RTC_CHANGE|dump-skeys|SGX.*|query-cpus-fast-target)$/, 'misc-target'],
];

const page = gunzipSync(readFileSync(process.argv[2] ?? '/usr/share/man/man7/qemu-qmp-ref.7.gz')).toString('utf8');
const out: Record<string, string> = {};
let module: string | undefined;
for (const line of page.split('\n')) {
  const heading = /^\.S[HS] (.*)$/.exec(line)?.[1];
  if (heading === undefined) continue;
  if (heading in SECTION_MODULE) module = SECTION_MODULE[heading];
  const def = /^\\fB(.*)\\fP \((Command|Event)\)$/.exec(heading);
  if (!def || !module) continue;
  const name = def[1]!.replace(/\\-/g, '-');
  out[`${def[2]!.toLowerCase()}:${name}`] = NAME_MODULE.find(([re]) => re.test(name))?.[1] ?? module;
}
const sorted = Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
writeFileSync(new URL('./gen/qemu/qapi-modules.json', import.meta.url), `${JSON.stringify(sorted, null, 1)}\n`);
console.log(`${Object.keys(sorted).length} definitions`);
