/**
 * The README's main command and the examples run as written: each starts its own private libvirtd and
 * guests, prints what it shows, exits 0, and leaves nothing behind.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function run(example: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', join(repoRoot, 'examples', example), ...args], {
    cwd: repoRoot,
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return stdout;
}

/** The private libvirtd's directory the example announced: it must be gone once the example exits. */
function stateDir(out: string): string {
  const m = /(?:all state in|a private libvirtd in) (\/\S+)/.exec(out);
  if (!m) throw new Error(`the example did not say where its libvirtd lived:\n${out}`);
  return m[1]!;
}

describe('examples run as written against a private libvirtd', () => {
  it('demo.ts: lifecycle, QMP, stop → paused, events from both sides, reconnect, passthrough, policy', async () => {
    const out = await run('demo.ts');
    expect(out).toMatch(/connected via monitor: QEMU 7\.2/);
    expect(out).toMatch(/query-status → \{"status":"running"/);
    expect(out).toMatch(/set_link net0 down → ok/);
    expect(out).toMatch(/libvirt +state → \{"state":"paused"/);
    expect(out).toMatch(/qmp +event +libqemu-demo: STOP/);
    expect(out).toMatch(/libvirt +event +libqemu-demo: suspended \(paused\)/);
    expect(out).toMatch(/QMP monitor reconnected after a \d+ ms gap/);
    expect(out).toMatch(/same client, new QEMU: query-status → running/);
    expect(out).toMatch(/connected via passthrough/);
    expect(out).toMatch(/device_add refused/);
    expect(out).toMatch(/done\s*$/);
    expect(existsSync(stateDir(out))).toBe(false);
  }, 150_000);

  it('demo.ts --linux: the guest agent next to QMP and libvirt on the Linux test guest, then an ACPI power-off', async () => {
    const out = await run('demo.ts', '--linux');
    expect(out).toMatch(/guest agent connected \(channel\)/);
    expect(out).toMatch(/agent ready \d+ ms after start/);
    expect(out).toMatch(/query-status → \{"status":"running"/);
    expect(out).toMatch(/guest-get-osinfo → libqemu test guest/);
    expect(out).toMatch(/exec → exit 3, stdout "libqemu-guest: up [\d.]+ s\\n"/);
    expect(out).toMatch(/stopped \(shutdown\)/);
    expect(out).toMatch(/state → \{"state":"shutoff","reason":"shutdown"\}/);
    expect(out).toMatch(/done\s*$/);
    expect(existsSync(stateDir(out))).toBe(false);
  }, 150_000);

  it('gradual-adoption.ts: an existing guest gets announce-self through passthrough', async () => {
    const out = await run('gradual-adoption.ts');
    expect(out).toMatch(/announce-self → ok[\s\S]*taint marks: custom-monitor/);
    expect(existsSync(stateDir(out))).toBe(false);
  }, 150_000);

  it('set-link.ts: the 2010 sketch\'s qmp_set_link', async () => {
    const out = await run('set-link.ts');
    expect(out).toMatch(/net0: link down\nnet0: link up\nset_link on a missing NIC → DeviceNotFound/);
    expect(existsSync(stateDir(out))).toBe(false);
  }, 150_000);

  it('follow-events.ts: libvirt and QMP events in one stream', async () => {
    const events = await run('follow-events.ts', '--seconds', '3');
    expect(events).toMatch(/qmp +STOP/);
    expect(events).toMatch(/libvirt +suspended \(paused\)/);
    expect(events).toMatch(/libvirt +resumed \(unpaused\)/);
  }, 150_000);
});
