/**
 * A/B of the passthrough route in one interleaved run: `npx tsx bench/ab/passthrough.ts <treeA> <treeB>`
 * (each a checkout with node_modules). One private libvirtd and one tiny guest; for each tree a process
 * timing guest.qmp({ via: 'passthrough' }).execute('query-status') and one timing domain.qemuMonitorCommand;
 * python3-libvirt plain and with libvirt's event loop running in a thread. Every round runs each side for
 * AB_CALLS calls, in a rotated order, so drift on the shared machine hits all sides alike. AB_MODES picks the
 * sides (qmp, dom, proxy — which adds virt-qemu-qmp-proxy —, and the floors raw, rawka, rawmain; see
 * passthrough-child.ts). Prints medians and means, and the median over rounds of each side's p50 divided by
 * the baseline's p50 in the same round (the figure least moved by a noisy machine).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  qmpnv: 'guest.qmp passthrough, validate: false',
  dom: 'dom.qemuMonitorCommand',
  raw: 'floor: koffi loop in a worker, event loop on',
  rawka: 'floor: the same with keepalive on',
  rawmain: 'floor: koffi loop, main thread, no event loop',
  proxy: 'in-process passthrough proxy',
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
let virt: ChildProcess | undefined;
try {
  const dom = await conn.createXML(tinyGuestXml({ name: 'ab' }));
  await new Promise((r) => setTimeout(r, 500));
  for (const mode of MODES) for (const [i, t] of trees.entries()) sides.push(await startChild(t, lv.uri, dom.name, mode, `${String.fromCharCode(65 + i)} ${LABELS[mode] ?? mode}`));
  if (MODES.includes('proxy') && existsSync('/usr/bin/virt-qemu-qmp-proxy')) {
    // libvirt's own passthrough proxy, measured with the same minimal client from a Node process.
    const path = join(mkdtempSync(join(tmpdir(), 'abvirt-')), 'virt.sock');
    virt = spawn('/usr/bin/python3', ['/usr/bin/virt-qemu-qmp-proxy', '-c', lv.uri, dom.name, path], { stdio: 'ignore' });
    for (let i = 0; i < 300 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
    sides.push(await startChild(trees[0]!, lv.uri, path, 'socket', 'virt-qemu-qmp-proxy'));
  }
  const python = await startPythonQmp(lv.uri, dom.name);
  if (!python) throw new Error('python3-libvirt is not installed: no baseline');
  sides.push({ name: 'python3-libvirt', round: (n) => python.plain.round(n), stop: () => python.plain.stop() });
  sides.push({ name: 'python3-libvirt, event loop thread', round: (n) => python.loop.round(n), stop: () => python.loop.stop() });
  const times = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  const roundP50s = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
    for (const s of order) {
      const t = await s.round(CALLS);
      times.get(s.name)!.push(...t);
      roundP50s.get(s.name)!.push(summarize(t).p50);
    }
  }
  /** Median over rounds of (this side's p50 / the base side's p50 in the same round). */
  const perRound = (name: string, base: string): number => summarize(roundP50s.get(name)!.map((p, r) => p / roundP50s.get(base)![r]!)).p50;
  const bases = ['python3-libvirt', ...(virt ? ['virt-qemu-qmp-proxy'] : [])];
  const short = (b: string): string => (b === 'python3-libvirt' ? 'py' : 'virt');
  console.log(`\n${ROUNDS} rounds × ${CALLS} calls per side, order rotated each round; trees: ${trees.map((t, i) => `${String.fromCharCode(65 + i)}=${t}`).join(' ')}`);
  console.log(['side'.padEnd(48), 'p50 ms', 'mean ms', ...bases.flatMap((b) => [`p50/${short(b)}`, `mean/${short(b)}`, `rounds p50/${short(b)}`])].join('  '));
  for (const s of sides) {
    const x = summarize(times.get(s.name)!);
    const cols = bases.flatMap((b) => {
      const y = summarize(times.get(b)!);
      return [(x.p50 / y.p50).toFixed(3).padStart(6 + short(b).length), (x.mean / y.mean).toFixed(3).padStart(7 + short(b).length), perRound(s.name, b).toFixed(3).padStart(11 + short(b).length)];
    });
    console.log([s.name.padEnd(48), x.p50.toFixed(3).padStart(6), x.mean.toFixed(3).padStart(7), ...cols].join('  '));
  }
  await dom.destroy();
} finally {
  for (const s of sides) s.stop();
  virt?.kill();
  await conn.close();
  await lv.stop();
}
