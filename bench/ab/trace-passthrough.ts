/**
 * Where one passthrough call spends its time: `npx tsx bench/ab/trace-passthrough.ts [tree] [qmp|qmpnv|dom|proxy]`
 * (qmpnv: guest.qmp without schema validation).
 * Copies `tree` (default: this checkout) to a temporary directory, adds timestamps (process.hrtime, one
 * clock for every thread) at each step of a call in the copy only — QMP client, passthrough transport,
 * domain, connection, executor on the main thread; wake-up, koffi call and reply in the executor worker —
 * then runs 1,500 sequential query-status calls against a private libvirtd there and prints the median
 * and mean of every step. The shipped code carries no tracing; a step whose anchor text is gone makes
 * this script fail, saying which.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const tree = resolve(process.argv[2] ?? fileURLToPath(new URL('../..', import.meta.url)));
const mode = process.argv[3] ?? 'qmp';
const copy = mkdtempSync(join(tmpdir(), 'lq-trace-'));
execFileSync('bash', ['-c', `cd ${JSON.stringify(tree)} && tar -c --exclude=node_modules --exclude=.git src native bench package.json tsconfig.json | tar -x -C ${JSON.stringify(copy)}`]);
symlinkSync(join(tree, 'node_modules'), join(copy, 'node_modules'));

const MARK = "(globalThis as { __tr?: (n: string, w?: number[]) => void }).__tr?.(";
const NOW = 'Number(process.hrtime.bigint() / 1000n)';
const WPUSH = `(globalThis as { __wt?: number[] }).__wt?.push(${NOW})`;

/** Inserts `text` before (or after) the first occurrence of `anchor` in `file` of the copy. */
function mark(file: string, anchor: string, text: string, where: 'before' | 'after' = 'before'): void {
  const path = join(copy, file);
  const src = readFileSync(path, 'utf8');
  const at = src.indexOf(anchor);
  if (at < 0) throw new Error(`trace anchor not found in ${file}: ${anchor}`);
  const pos = where === 'before' ? at : at + anchor.length;
  writeFileSync(path, src.slice(0, pos) + text + src.slice(pos));
}
const m = (name: string): string => `${MARK}'${name}');\n`;

// Executor worker: woke (Atomics.wait returned), request taken, koffi call start/end, reply posted.
mark('src/libvirt/executor-worker.ts', 'function handle(req: ExecRequest): void {', `let wokeAt = 0;\n`);
mark('src/libvirt/executor-worker.ts', 'function handle(req: ExecRequest): void {', `\n  const t: number[] = [wokeAt, ${NOW}];\n  (globalThis as { __wt?: number[] }).__wt = t;`, 'after');
mark('src/libvirt/executor-worker.ts', '    port.postMessage(reply);', `    t.push(${NOW});\n    (reply as { t?: number[] }).t = t;\n`);
mark('src/libvirt/executor-worker.ts', '  Atomics.wait(ctl, CTL_SEQ, seq, 250);', `\n  wokeAt = ${NOW};`, 'after');
{
  // the koffi call of the outStr shape (virDomainQemuMonitorCommand)
  const path = join(copy, 'src/libvirt/interpreter.ts');
  const src = readFileSync(path, 'utf8');
  const call = '  if ((plan.fn(...cargs) as number) < 0) failure(native, name);';
  if (!src.includes(call)) throw new Error(`trace anchor not found in interpreter.ts: ${call}`);
  writeFileSync(path, src.replace(call, `  ${WPUSH};\n  const rc = plan.fn(...cargs) as number;\n  ${WPUSH};\n  if (rc < 0) failure(native, name);`));
}
// Main thread.
mark('src/libvirt/executor.ts', '      this.worker.postMessage(req);', `      ${m('post')}`);
mark('src/libvirt/executor.ts', '      this.worker.postMessage(req);\n', `      ${m('posted')}`, 'after');
mark('src/libvirt/executor.ts', '    if (this.inFlight.length === 1) this.startHead();\n', `    ${m('notified')}`, 'after');
mark('src/libvirt/executor.ts', "  private onReply(r: ExecReply): void {\n    if (r.id === 0) return;\n", `    ${MARK}'reply', (r as { t?: number[] }).t);\n`, 'after');
mark('src/libvirt/connection-core.ts', '  call(c: string, tags: string, args: unknown[], options: CallOptions = {}): Promise<unknown> {\n', `    ${m('connection.call')}`, 'after');
mark('src/libvirt/connection-core.ts', '          (value) => {\n            this.pool.release(free);', `\n            ${m('lane released')}`, 'after');
mark('src/libvirt/domain-core.ts', 'function parseMonitorReply(reply: unknown): QemuMonitorReply {\n', `  ${m('JSON.parse of the reply')}`, 'after');
mark('src/libvirt/domain-core.ts', '  qemuMonitorCommand(command: string | Record<string, unknown>, options?: CallOptions): Promise<QemuMonitorReply> {\n', `    ${m('domain.qemuMonitorCommand')}`, 'after');
mark('src/hybrid/passthrough-transport.ts', '  send(msg: QmpMessage, options?: SendOptions): void {\n', `    ${m('transport.send')}`, 'after');
mark('src/hybrid/passthrough-transport.ts', '          if (outcome instanceof Error) this.handlers?.failed(id, outcome);', `${m('transport delivers')}          `);
mark('src/qmp/client.ts', '  private run(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions & O): Promise<unknown> {\n', `    ${m('client.execute (validators)')}`, 'after');
mark('src/qmp/client.ts', '  private onMessage(msg: QmpMessage): void {\n', `    ${m('client.onMessage')}`, 'after');
mark('src/qmp/command-table.ts', '  submit(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions): Promise<unknown> {\n', `    ${m('table.submit')}`, 'after');
mark('src/qmp/command-table.ts', '      p.resolve(msg.return);', `${m('table.resolve')}      `);
if (mode === 'proxy') {
  mark('src/qmp/server-session.ts', '  receive(chunk: Buffer, fds: number[] = []): void {\n', `    ${m('proxy session receives')}`, 'after');
  mark('src/qmp/server-session.ts', '  private write(text: string): void {\n    if (this.closedReason !== undefined) return;\n', `    ${m('proxy session writes')}`, 'after');
  mark('src/proxy/server.ts', '  private relay(client: object, request: ClientRequest, signal: AbortSignal): Promise<unknown> {\n', `    ${m('proxy.relay')}`, 'after');
}

writeFileSync(
  join(copy, 'trace-run.ts'),
  `
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hypervisor } from './src/hybrid/index.js';
import { QmpProxy } from './src/proxy/index.js';
import { RawQmpClient } from './bench/raw-qmp-client.js';
import { startPrivateLibvirtd, tinyGuestXml } from './src/testing/private-libvirtd.js';
const now = (): number => ${NOW};
let marks: [string, number][] = [];
let worker: number[] = [];
(globalThis as { __tr?: unknown }).__tr = (name: string, wt?: number[]) => {
  marks.push([name, now()]);
  if (wt) worker = wt;
};
const lv = await startPrivateLibvirtd({ prefix: 'lqtr' });
const hv = await Hypervisor.connect(lv.uri, { onTaint: () => {} });
try {
  const g = await hv.defineGuest(tinyGuestXml({ name: 'trace' }));
  await g.start();
  let call: () => Promise<unknown>;
  if (${JSON.stringify(mode)} === 'dom') {
    const dom = await hv.connection.lookupDomain('trace');
    call = () => dom.qemuMonitorCommand({ execute: 'query-status' });
  } else if (${JSON.stringify(mode)} === 'proxy') {
    const backend = await g.qmp({ via: 'passthrough', validate: false, timeoutMs: 0 });
    const proxy = await QmpProxy.start(backend, { listen: join(mkdtempSync(join(tmpdir(), 'lqtr-')), 'p.sock') });
    const c = await RawQmpClient.open(proxy.path);
    call = () => c.call('query-status');
  } else {
    const client = await g.qmp({ via: 'passthrough', validate: ${JSON.stringify(mode)} !== 'qmpnv' });
    call = () => client.execute('query-status');
  }
  for (let i = 0; i < 200; i++) await call();
  const steps = new Map<string, number[]>();
  const add = (k: string, v: number) => (steps.get(k) ?? steps.set(k, []).get(k)!).push(v);
  const names = ['worker woke', 'worker took the request', 'koffi call starts', 'koffi call returns', 'worker posts the reply'];
  for (let i = 0; i < 1500; i++) {
    marks = [];
    worker = [];
    const t0 = now();
    await call();
    const t1 = now();
    const all: [string, number][] = [['call starts', t0], ...marks];
    if (worker.length === 5) worker.forEach((t, j) => all.push([names[j]!, t]));
    all.push(['caller resumes', t1]);
    all.sort((a, b) => a[1] - b[1]);
    for (let j = 1; j < all.length; j++) add(\`\${all[j - 1]![0]} → \${all[j]![0]}\`, all[j]![1] - all[j - 1]![1]);
    add('TOTAL', t1 - t0);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log('step (µs; steps seen in fewer than 300 calls are orderings that vary and are left out)'.padEnd(70), 'calls', '  p50', '   mean');
  for (const [k, v] of steps) if (v.length >= 300) console.log(k.padEnd(70), String(v.length).padStart(5), String(med(v)).padStart(5), mean(v).toFixed(1).padStart(7));
} finally {
  await hv.close();
  await lv.stop();
}
process.exit(0);
`,
);
const r = spawnSync(process.execPath, ['--import', 'tsx', join(copy, 'trace-run.ts')], { cwd: copy, stdio: 'inherit' });
process.exit(r.status ?? 1);
