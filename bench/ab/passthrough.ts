/**
 * A/B of the passthrough route in one interleaved run: `npx tsx bench/ab/passthrough.ts <treeA> <treeB>`
 * (each a checkout with node_modules). One private libvirtd and one tiny guest; for each tree a process
 * timing guest.qmp({ via: 'passthrough' }).execute('query-status') and one timing domain.qemuMonitorCommand;
 * python3-libvirt plain and with libvirt's event loop running in a thread. Every round runs each side for
 * AB_CALLS calls, in a rotated order, so drift on the shared machine hits all sides alike. Prints medians
 * and means, and the median over rounds of each side's p50 / python's p50.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startPrivateLibvirtd, tinyGuestXml } from '../../src/testing/private-libvirtd.js';
import { Connection } from '../../src/libvirt/index.js';
import { startPythonQmp } from '../python-qmp.js';
import { summarize } from '../table.js';

const trees = process.argv.slice(2).map((t) => resolve(t));
const ROUNDS = Number(process.env.AB_ROUNDS ?? 16);
const CALLS = Number(process.env.AB_CALLS ?? 100);
const MODES = (process.env.AB_MODES ?? 'qmp,dom').split(',');
const LABELS: Record<string, string> = {
  qmp: 'guest.qmp passthrough',
  dom: 'dom.qemuMonitorCommand',
  raw: 'floor: koffi loop in a worker, event loop on',
  rawka: 'floor: the same with keepalive on',
  rawmain: 'floor: koffi loop, main thread, no event loop',
};


interface Side {
  name: string;
  round(n: number): Promise<number[]>;
  stop(): void;
}

async function startChild(tree: string, uri: string, guest: string, mode: string, label: string): Promise<Side> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./passthrough-child.ts', import.meta.url)), tree, uri, guest, mode], { cwd: tree, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<number[]> => {
    const r = await lines.next();
    if (r.done) throw new Error(`${label} exited`);
    return JSON.parse(r.value) as number[];
  };
  await next();
  return {
    name: label,
    round: (n) => (child.stdin.write(`${n}\n`), next()),
    stop: () => child.stdin.end('0\n'),
  };
}

const lv = await startPrivateLibvirtd({ prefix: 'abpt' });
const conn = await Connection.open(lv.uri);
const sides: Side[] = [];
try {
  const dom = await conn.createXML(tinyGuestXml({ name: 'ab' }));
  await new Promise((r) => setTimeout(r, 500));
  for (const mode of MODES) for (const [i, t] of trees.entries()) sides.push(await startChild(t, lv.uri, dom.name, mode, `${String.fromCharCode(65 + i)} ${LABELS[mode] ?? mode}`));
  const python = await startPythonQmp(lv.uri, dom.name);
  if (!python) throw new Error('python3-libvirt is not installed: no baseline');
  sides.push({ name: 'python3-libvirt', round: (n) => python.plain.round(n), stop: () => python.plain.stop() });
  sides.push({ name: 'python3-libvirt, event loop thread', round: (n) => python.loop.round(n), stop: () => python.loop.stop() });
  const times = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  const perRound = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
    const p50s = new Map<string, number>();
    for (const s of order) {
      const t = await s.round(CALLS);
      times.get(s.name)!.push(...t);
      p50s.set(s.name, summarize(t).p50);
    }
    const py = p50s.get('python3-libvirt')!;
    for (const s of sides) perRound.get(s.name)!.push(p50s.get(s.name)! / py);
  }
  const py = summarize(times.get('python3-libvirt')!);
  console.log(`\n${ROUNDS} rounds × ${CALLS} calls per side; trees: ${trees.map((t, i) => `${String.fromCharCode(65 + i)}=${t}`).join(' ')}`);
  console.log(['side'.padEnd(44), 'p50 ms', 'mean ms', 'p50/py', 'mean/py', 'median of round p50 ratios'].join('  '));
  for (const s of sides) {
    const x = summarize(times.get(s.name)!);
    const rr = summarize(perRound.get(s.name)!).p50;
    console.log([s.name.padEnd(44), x.p50.toFixed(3).padStart(6), x.mean.toFixed(3).padStart(7), (x.p50 / py.p50).toFixed(3).padStart(6), (x.mean / py.mean).toFixed(3).padStart(7), rr.toFixed(3)].join('  '));
  }
  await dom.destroy();
} finally {
  for (const s of sides) s.stop();
  await conn.close();
  await lv.stop();
}
