/**
 * `libqemu` as spawned processes against a real private libvirtd and one tiny TCG guest with a second
 * QMP monitor: lifecycle, guests, exec on both routes, the ownership policy, events, shell, and the
 * proxy (--domain) with real clients (socat and our own).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { POLICY_ERROR_CLASS } from '../../src/proxy/index.js';
import { QmpClient, QmpCommandError } from '../../src/qmp/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { JAVASCRIPT_IN_HINT } from '../../src/cli/hints.js';
import { BIN, CliProcess, runCli, runCommand } from './run-cli.js';
import { RawQmp } from '../proxy/raw-client.js';

const run = promisify(execFile);

let lv: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;
let tmp: string;
const NAME = 'cli1';

/** `libqemu -c URI …` */
// Spawned CLIs start tsx, libvirt's worker threads and a connection each: generous bounds for loaded CI machines.
const SLOW = { timeout: 300_000 };
const cli = (...args: string[]) => runCli(['-c', lv.uri, ...args], { timeoutMs: 150_000 });
const cliProcess = (...args: string[]) => new CliProcess(['-c', lv.uri, ...args]);

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'lqcli' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
  guest = await hv.defineGuest(tinyGuestXml({ name: NAME }), { qmpSocket: true });
  tmp = mkdtempSync(join(tmpdir(), 'lq-clilv-'));
});
afterAll(async () => {
  await guest?.destroy().catch(() => undefined);
  await hv?.close();
  await lv?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('libqemu on a libvirt guest', SLOW, () => {
  it('starts the guest and lists it with its QMP routes', async () => {
    const start = await cli('start', NAME);
    expect(start).toMatchObject({ code: 0, stdout: `${NAME}: started (now running, booted)\n` });
    const list = await cli('--json', 'guests');
    expect(list.code).toBe(0);
    const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; state: string; routes: string[]; monitorSocket: string });
    expect(rows).toEqual([expect.objectContaining({ name: NAME, state: 'running', routes: ['monitor', 'passthrough'], monitorSocket: expect.stringContaining(lv.qmpDir) })]);
    const table = await cli('guests');
    expect(table.stdout).toMatch(/^NAME\s+STATE\s+QMP ROUTES\s+UUID\ncli1\s+running\s+monitor,passthrough\s+[0-9a-f-]{36}\n$/);
  });

  it('runs QMP commands on both routes; the policy refuses libvirt-owned state with exit 4', async () => {
    const auto = await cli('-d', NAME, 'exec', 'query-status');
    expect(auto.code).toBe(0);
    expect(JSON.parse(auto.stdout)).toMatchObject({ status: 'running' });
    const pass = await cli('-d', NAME, '--via', 'passthrough', '--json', 'exec', 'query-name');
    expect(pass).toMatchObject({ code: 0, stdout: `{"name":"${NAME}"}\n` });
    const refused = await cli('-d', NAME, 'exec', 'device_del', 'id=net0');
    expect(refused.code).toBe(4);
    // the message names libvirt's way once; the hint names the flag that opts in
    expect(refused.stderr).toMatch(/refused by the ownership policy[^\n]*virDomainAttachDeviceFlags \/ virDomainDetachDeviceFlags[^\n]*\n {2}hint: [^\n]*--allow device_del\n$/);
    expect(refused.stderr.match(/virDomainDetachDeviceFlags/g)).toHaveLength(1);
    expect(refused.stderr).not.toMatch(JAVASCRIPT_IN_HINT);
    // with the opt-in it reaches QEMU, which has no such device: a QMP error (2), not a refusal
    const allowed = await cli('-d', NAME, '--allow', 'device_del', 'exec', 'device_del', 'id=net0');
    expect(allowed.code).toBe(2);
    expect(allowed.stderr).toMatch(/DeviceNotFound/);
  });

  it('exits 3 for a guest libvirt does not know, and for one that is not running', async () => {
    const missing = await cli('-d', 'no-such-guest', '--json', 'exec', 'query-status');
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stderr)).toMatchObject({ error: { type: 'GuestNotFoundError', exitCode: 3, hint: `list the guests with: libqemu -c ${lv.uri} guests (names are case-sensitive)` } });
  });

  it('takes the guest positionally in exec, as the lifecycle verbs do', async () => {
    const r = await cli('--json', 'exec', NAME, 'query-name');
    expect(r).toMatchObject({ code: 0, stdout: `{"name":"${NAME}"}\n` });
    const args = await cli('--json', 'exec', NAME, 'qom-get', 'path=/machine', 'property=type');
    expect(args.code).toBe(0);
    expect(JSON.parse(args.stdout)).toMatch(/pc/);
  });

  it('prints the taint notice once per call, not with --quiet', async () => {
    const loud = await cli('-d', NAME, 'exec', 'query-status');
    expect(loud.code).toBe(0);
    expect(loud.stderr.match(/tainted \(custom-argv/g) ?? []).toHaveLength(1);
    const quiet = await cli('-d', NAME, '--quiet', 'exec', 'query-status');
    expect(quiet).toMatchObject({ code: 0, stderr: '' });
  });

  it('lets the shell use HMP help and info on a libvirt guest', async () => {
    const r = await runCli(['-c', lv.uri, '-d', NAME, 'shell', '--hmp', '--no-history'], { input: 'help info\ninfo status\n', timeoutMs: 150_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/info status/);
    expect(r.stdout).toMatch(/VM status: running/);
  });

  for (const via of ['monitor', 'passthrough'] as const) {
    it(`echoes what the shell sends with -v on the ${via} route`, async () => {
      const r = await runCli(['-c', lv.uri, '-d', NAME, '--via', via, 'shell', '--no-history', '-v'], { input: 'query-name\n', timeoutMs: 150_000 });
      expect(r.code).toBe(0);
      const sent = r.stdout.split('\n').filter((l) => l.startsWith('{"execute"')).map((l) => JSON.parse(l) as { execute: string });
      expect(sent.map((m) => m.execute)).toEqual(['query-name']);
      expect(r.stdout).toContain(`"name": "${NAME}"`);
    });
  }

  it('says how to get permission when the libvirt socket refuses this user', async () => {
    const locked = mkdtempSync(join(tmp, 'locked-')); // 0700, owned by root: uid 65534 may not enter
    const r = await runCommand('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, BIN, '-c', `qemu+unix:///session?socket=${locked}/libvirt-sock`, 'guests'], { timeoutMs: 150_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Permission denied\n {2}hint: this user may not use that libvirt daemon's socket: check the socket's owner and mode, run as its owner, or join its group/);
  });

  it('suspends and resumes through libvirt, and events shows libvirt and QMP events of it', async () => {
    const events = cliProcess('-d', NAME, '--json', 'events', '-n', '4', 'STOP', 'RESUME', 'suspended', 'resumed');
    try {
      await events.waitFor(/following events of guest cli1/, 'stderr', 150_000);
      const suspend = await cli('suspend', NAME);
      expect(suspend.stdout).toBe(`${NAME}: suspended (now paused, user)\n`);
      const resume = await cli('--json', 'resume', NAME);
      expect(JSON.parse(resume.stdout)).toEqual({ guest: NAME, action: 'resume', state: 'running', reason: 'unpaused' });
      expect(await events.exited).toBe(0);
      const got = events.stdout.trim().split('\n').map((l) => JSON.parse(l) as { source: string; event: string });
      expect(got.map((e) => `${e.source}:${e.event}`).sort()).toEqual(['libvirt:resumed', 'libvirt:suspended', 'qmp:RESUME', 'qmp:STOP']);
    } finally {
      await events.stop('SIGKILL');
    }
  });

  it('events -n counts libvirt and QMP events, not the taint notice', async () => {
    const events = cliProcess('-d', NAME, '--json', 'events', '-n', '1');
    try {
      await events.waitFor(/following events of guest cli1/, 'stderr', 150_000);
      expect(events.stderr.match(/tainted \(custom-argv/g) ?? []).toHaveLength(0); // --json: no notes
      const suspend = await cli('suspend', NAME);
      expect(suspend.code).toBe(0);
      expect(await events.exited).toBe(0);
      const got = events.stdout.trim().split('\n').map((l) => JSON.parse(l) as { source: string; kind: string });
      expect(got).toHaveLength(1);
      expect(['libvirt', 'qmp']).toContain(got[0]!.source);
    } finally {
      await events.stop('SIGKILL');
      await cli('resume', NAME);
    }
  });

  it('runs a piped shell on the guest, with the policy refusal printed readably', async () => {
    const r = await runCli(['-c', lv.uri, '-d', NAME, 'shell', '--no-history'], { input: 'query-status\ndevice_del id=net0\nquery-name\n', timeoutMs: 150_000 });
    expect(r.code).toBe(4); // the refused line's exit code: a script learns that a line failed
    expect(r.stdout).toContain('"status": "running"');
    expect(r.stderr).toMatch(/^libqemu: error: QMP command 'device_del' refused by the ownership policy[^\n]*\n {2}hint: [^\n]*--allow device_del$/m);
    expect(r.stdout).toContain(`"name": "${NAME}"`);
  });
});

describe('libqemu proxy --domain', SLOW, () => {
  for (const via of ['monitor', 'passthrough'] as const) {
    it(`serves socat and several of our clients through the ${via} route, with events and policy refusals`, async () => {
      const listen = join(tmp, via, 'q.sock');
      const proxy = cliProcess('-d', NAME, '--via', via, 'proxy', '--listen', listen);
      try {
        await proxy.waitFor(new RegExp(`serving guest ${NAME} via ${via} on `), 'stdout', 150_000);
        expect(statSync(listen).mode & 0o777).toBe(0o600);
        expect(statSync(join(tmp, via)).mode & 0o777).toBe(0o700);

        // socat, the way a shell script would use it
        const { stdout } = await run('sh', ['-c', `printf '%s\\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-status","id":7}' | socat -t 5 - UNIX-CONNECT:${listen}`], { timeout: 60_000 });
        const lines = stdout.trim().split(/\r?\n/).map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(lines[0]).toHaveProperty('QMP.version.qemu.major', 7); // the real version, also via passthrough
        expect(lines[2]).toMatchObject({ id: 7, return: { status: 'running' } });

        // two clients at once: pipelined commands, events to both, refusals as QMP errors
        const a = await RawQmp.connect(listen);
        const b = await QmpClient.connect({ path: listen });
        try {
          const stopSeen = b.waitForEvent('STOP', { timeoutMs: 60_000 });
          a.send([{ execute: 'query-name', id: 'n' }, { execute: 'stop', id: 's' }, { execute: 'query-status', id: 'q' }].map((m) => JSON.stringify(m)).join('\n') + '\n');
          expect(await a.next((m) => m.id === 'q', 60_000)).toMatchObject({ return: { status: 'paused' } });
          expect(a.messages.filter((m) => 'id' in m && m.id !== 'neg').map((m) => m.id)).toEqual(['n', 's', 'q']);
          await stopSeen;
          await a.next((m) => m.event === 'STOP', 60_000);
          expect(await b.execute('cont')).toEqual({});
          await a.next((m) => m.event === 'RESUME', 60_000);
          const refused = await a.call('device_del', 'd', { id: 'net0' });
          expect(refused).toMatchObject({ id: 'd', error: { class: POLICY_ERROR_CLASS, desc: expect.stringMatching(/virDomainDetachDeviceFlags/) } });
          // a socat or qmp-shell user is told the proxy's own flag, not a JavaScript call
          const desc = (refused as { error: { desc: string } }).error.desc;
          expect(desc).toMatch(/restart the proxy with --allow device_del$/);
          expect(desc).not.toMatch(JAVASCRIPT_IN_HINT);
          const quit = await b.execute('quit').catch((e: unknown) => e);
          expect(quit).toBeInstanceOf(QmpCommandError);
          expect((quit as QmpCommandError).desc).toMatch(/virDomainDestroy/);
          expect((await guest.state()).state).toBe('running');
        } finally {
          a.close();
          await b.close();
        }
        expect(await proxy.stop('SIGTERM')).toBe(0);
        expect(() => statSync(listen)).toThrow();
      } finally {
        await proxy.stop('SIGKILL');
      }
    });
  }

  it('destroys the guest from the command line', async () => {
    const r = await cli('destroy', NAME);
    expect(r).toMatchObject({ code: 0, stdout: `${NAME}: destroyed (now shutoff, destroyed)\n` });
    const again = await cli('-d', NAME, 'exec', 'query-status');
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/is not running[\s\S]*hint: start it first: libqemu -c \S+ start cli1\n$/);
  });
});
