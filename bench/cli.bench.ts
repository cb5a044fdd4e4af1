/**
 * What one `libqemu` call costs from the shell, next to `virsh qemu-monitor-command` on the same guest
 * (private libvirtd, tiny TCG guest with a second monitor). Each command is a fresh process, as a
 * user's shell runs it; rounds are interleaved so load affects every row alike. The CLI runs from its
 * build (dist/, made here first), as an installed package does.
 * Target: a CLI call ≤ 0.3 s of start-up (`libqemu --version` over a bare `node -e 0`), and a QMP call
 * through the CLI within 0.3 s of virsh's.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Hypervisor } from '../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/index.js';
import { printTable, summarize } from './table.js';

const run = promisify(execFile);
const ROOT = join(fileURLToPath(import.meta.url), '..', '..');
const BIN = join(ROOT, 'bin', 'libqemu.js');
const ROUNDS = 15;

async function wall(file: string, args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run(file, args, { cwd: ROOT });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export default async function bench(): Promise<void> {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'ignore' });
  const lv = await startPrivateLibvirtd({ prefix: 'lqbcli' });
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
  try {
    const guest = await hv.defineGuest(tinyGuestXml({ name: 'bcli' }), { qmpSocket: true });
    await guest.start();
    const sock = (await guest.monitorSocket())!;
    const node = process.execPath;
    const rows: [string, string, string[]][] = [
      ['node -e 0 (Node start-up alone)', node, ['-e', '0']],
      ['libqemu --version', node, [BIN, '--version']],
      ['virsh qemu-monitor-command query-status', 'virsh', ['-c', lv.uri, 'qemu-monitor-command', 'bcli', '{"execute":"query-status"}']],
      ['libqemu exec bcli query-status (monitor)', node, [BIN, '-q', '-c', lv.uri, 'exec', 'bcli', 'query-status']],
      ['libqemu --via passthrough exec bcli query-status', node, [BIN, '-q', '-c', lv.uri, '--via', 'passthrough', 'exec', 'bcli', 'query-status']],
      ['libqemu -s SOCKET exec query-status (no libvirt)', node, [BIN, '-s', sock, 'exec', 'query-status']],
    ];
    const times = rows.map(() => [] as number[]);
    for (const [, file, args] of rows) await wall(file, args); // warm caches
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [, file, args]] of rows.entries()) times[i]!.push(await wall(file, args));
    }
    const stats = times.map((t) => summarize(t));
    printTable(
      `One CLI call, wall time per process (p50 of ${ROUNDS}, interleaved)`,
      rows.map(([name], i) => ({ name, value: stats[i]!.p50, unit: 'ms', extra: { mean: `${stats[i]!.mean.toFixed(0)} ms`, min: `${stats[i]!.min.toFixed(0)} ms` } })),
      'virsh qemu-monitor-command query-status',
      'start-up ≤ 300 ms; a QMP call ≤ virsh + 300 ms',
    );
    console.log(`libqemu start-up over bare Node: ${(stats[1]!.p50 - stats[0]!.p50).toFixed(0)} ms (p50)`);
    await guest.destroy();
    await guest.undefine();
  } finally {
    await hv.close();
    await lv.stop();
  }
}
