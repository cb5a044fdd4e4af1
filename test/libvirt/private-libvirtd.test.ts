/** The private libvirtd harness: nothing survives stop(), Ctrl-C or a killed parent, even mid-probe; tinyGuestXml's NIC. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { Connection } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../../src/testing/private-libvirtd.js';
import { waitFor } from '../harness/wait.js';

/** Every process whose command line, environment or cwd names `base` (checked independently of the harness). */
function processesNaming(base: string): string[] {
  const found: string[] = [];
  const names = (text: string): boolean => text.includes(`${base}/`) || text.includes(`${base}\0`) || text.endsWith(base);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'latin1');
      let environ = '';
      let cwd = '';
      try {
        environ = readFileSync(`/proc/${name}/environ`, 'latin1');
        cwd = readlinkSync(`/proc/${name}/cwd`);
      } catch {
        // not ours to read
      }
      if (names(cmdline) || names(environ) || cwd === base || cwd.startsWith(`${base}/`)) found.push(`${name} ${cmdline.replaceAll('\0', ' ').slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return found;
}

const isQemuProbe = (line: string): boolean => line.includes('qemu-system') && line.includes('-machine none');

let coldCache: string;
const savedCacheHome = process.env.XDG_CACHE_HOME;
beforeAll(() => {
  // An empty capabilities cache: libvirt has to probe QEMU on the first define (~0.6 s).
  coldCache = mkdtempSync(join(tmpdir(), 'lvcold-'));
});
afterAll(() => {
  if (savedCacheHome === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCacheHome;
  rmSync(coldCache, { recursive: true, force: true });
});

describe('stopping a private libvirtd while libvirt probes QEMU', () => {
  it('stop() ends the probe QEMU too and removes the directory', async () => {
    process.env.XDG_CACHE_HOME = mkdtempSync(join(coldCache, 'c-'));
    const daemon = await startPrivateLibvirtd({ prefix: 'lvstop' });
    const conn = await Connection.open(daemon.uri);
    try {
      const defined = conn.defineXML(tinyGuestXml({ name: 'probe' })).catch((e: unknown) => e);
      await waitFor('the capabilities probe', () => processesNaming(daemon.base).some(isQemuProbe));
      await daemon.stop();
      expect(processesNaming(daemon.base)).toEqual([]);
      expect(existsSync(daemon.base)).toBe(false);
      await defined;
    } finally {
      await daemon.stop(); // idempotent: also when a wait or check above failed
      await conn.close().catch(() => undefined);
    }
  });

  async function runProbeChild(mode: 'exit' | 'wait', then: (child: ReturnType<typeof spawn>) => void): Promise<{ base: string; probe: number | null; code: number | null; signal: NodeJS.Signals | null }> {
    const script = fileURLToPath(new URL('./fixtures/probe-daemon.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, mode, mkdtempSync(join(coldCache, 'c-'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let reported: { base: string; probe: number | null } | undefined;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!reported && out.includes('\n')) {
        reported = JSON.parse(out.slice(0, out.indexOf('\n'))) as { base: string; probe: number | null };
        then(child);
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    if (!reported) throw new Error(`the child reported nothing (exit ${code ?? signal}): ${out}`);
    return { ...reported, code, signal };
  }

  it('Ctrl-C (SIGINT) mid-probe leaves no process and no directory', async () => {
    const r = await runProbeChild('wait', (child) => child.kill('SIGINT'));
    expect(r.probe).toBeTypeOf('number');
    expect(r.signal).toBe('SIGINT'); // the harness cleans up, then dies by the signal as it would have
    expect(processesNaming(r.base)).toEqual([]);
    expect(existsSync(r.base)).toBe(false);
  });

  it('process.exit() mid-probe leaves no process and no directory', async () => {
    const r = await runProbeChild('exit', () => {});
    expect(r.probe).toBeTypeOf('number');
    expect(r.code).toBe(0);
    expect(processesNaming(r.base)).toEqual([]);
    expect(existsSync(r.base)).toBe(false);
  });

  it('a SIGKILLed parent mid-probe: the watchdog removes every process and the directory', async () => {
    const r = await runProbeChild('wait', (child) => child.kill('SIGKILL'));
    expect(r.probe).toBeTypeOf('number');
    // The watchdog polls its parent every 0.5 s, then sweeps three times 0.2 s apart.
    await waitFor('the watchdog to clean up', () => processesNaming(r.base).length === 0 && !existsSync(r.base));
  });
});

describe('tinyGuestXml', () => {
  it('adds no NIC by default, and a user-mode e1000 without option ROM on request', () => {
    expect(tinyGuestXml({ name: 'g' })).not.toContain('<interface');
    expect(tinyGuestXml({ name: 'g', nic: {} })).toContain("    <interface type='user'><model type='e1000'/><rom enabled='no'/></interface>\n");
    expect(tinyGuestXml({ name: 'g', nic: { model: 'rtl8139', id: 'ua-nic0' } })).toContain(
      "<interface type='user'><model type='rtl8139'/><rom enabled='no'/><alias name='ua-nic0'/></interface>",
    );
  });

  it('rejects NIC models and ids libvirt would not take, saying what to use', () => {
    expect(() => tinyGuestXml({ name: 'g', nic: { id: 'nic0' } })).toThrow(InvalidArgumentError);
    expect(() => tinyGuestXml({ name: 'g', nic: { id: "ua-x'/>" } })).toThrow(/ua-/);
    expect(() => tinyGuestXml({ name: 'g', nic: { model: "e1000'/><x" } })).toThrow(InvalidArgumentError);
    expect(() => tinyGuestXml({ name: 'g', nic: null as unknown as {} })).toThrow(InvalidArgumentError);
  });
});
