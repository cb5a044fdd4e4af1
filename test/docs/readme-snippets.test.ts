/**
 * Every ```ts snippet of the README runs as a script, as a user would copy it: imports of `libqemu`
 * point at this checkout, `qemu:///system` at a private libvirtd that has a running guest `web1`, and
 * `/tmp/qmp.sock` at a real QEMU's monitor. Each must print what it shows, exit 0 by itself (nothing
 * may keep the process alive once the snippet's code is done) and leave no libqemu temp directory.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { ROOT } from '../cli/run-cli.js';

/** A snippet still running after this long does not exit by itself: it is killed and the test fails. */
const EXIT_BOUND_MS = 90_000;
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** What each snippet must print, keyed by a line that identifies it. */
const EXPECTED: { marker: string; stdout: RegExp }[] = [
  { marker: "await hv.guest('web1')", stdout: /status: 'running'/ },
  { marker: 'defineGuest(await readFile', stdout: /libvirt lifecycle[\s\S]*refused by the ownership policy[\s\S]*virDomainAttachDeviceFlags/ },
  { marker: "from 'libqemu/qmp'", stdout: /CommandNotFound/ },
  { marker: 'startPrivateLibvirtd()', stdout: /status: 'running'/ },
];

export function readmeSnippets(text: string): string[] {
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

let daemon: PrivateLibvirtd;
let hv: Hypervisor;
let qemu: QemuInstance;
let work: string;

function adapt(snippet: string): string {
  return snippet
    .replace(/from 'libqemu'/g, `from '${join(ROOT, 'src', 'index.ts')}'`)
    .replace(/from 'libqemu\/qmp'/g, `from '${join(ROOT, 'src', 'qmp', 'index.ts')}'`)
    .replace(/from 'libqemu\/testing'/g, `from '${join(ROOT, 'src', 'testing', 'index.ts')}'`)
    .replace(/'qemu:\/\/\/system'/g, `'${daemon.uri}'`)
    .replace(/'\/tmp\/qmp\.sock'/g, `'${qemu.qmpPath}'`);
}

function runScript(file: string, tmpdir: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; hung: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, file], { cwd: work, env: { ...process.env, TMPDIR: tmpdir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, EXIT_BOUND_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, hung });
    });
  });
}

beforeAll(async () => {
  daemon = await startPrivateLibvirtd();
  hv = await Hypervisor.connect(daemon.uri);
  const web1 = await hv.defineGuest(tinyGuestXml({ name: 'web1', nic: {} }));
  await web1.start();
  qemu = await startQemu();
  work = mkdtempSync('/tmp/lq-readme-');
  chmodSync(work, 0o755); // QEMU (uid 65534) reaches monitor sockets below it
  writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(work, 'web2.xml'), tinyGuestXml({ name: 'web2', nic: {} }));
});
afterAll(async () => {
  await hv?.close();
  await daemon?.stop();
  await qemu?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('README snippets run as scripts and exit by themselves', { timeout: EXIT_BOUND_MS + 30_000 }, () => {
  const snippets = readmeSnippets(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  it('every snippet is known to this test', () => {
    expect(snippets.length).toBe(EXPECTED.length);
    for (const s of snippets) expect(EXPECTED.filter((e) => s.includes(e.marker))).toHaveLength(1);
  });

  for (const [i, snippet] of snippets.entries()) {
    const expected = EXPECTED.find((e) => snippet.includes(e.marker));
    it(`snippet ${i + 1} (${expected?.marker ?? 'unknown'})`, async () => {
      const tmp = join(work, `tmp${i}`);
      mkdirSync(tmp, { mode: 0o755 });
      const file = join(work, `snippet-${i + 1}.ts`);
      writeFileSync(file, adapt(snippet));
      const r = await runScript(file, tmp);
      expect({ hung: r.hung, code: r.code, signal: r.signal }, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toEqual({ hung: false, code: 0, signal: null });
      expect(r.stdout).toMatch(expected!.stdout);
      // temp directories (monitor sockets, private daemons) are gone with the process
      expect(readdirSync(tmp).filter((f) => !f.startsWith('tsx-'))).toEqual([]);
    });
  }
});
