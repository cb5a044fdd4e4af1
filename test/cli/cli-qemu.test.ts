/** `libqemu` as spawned processes against a real bare QEMU (--socket: no libvirt involved). */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/qmp/index.js';
import { createServer } from 'node:net';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { BIN, CliProcess, ROOT, runCli } from './run-cli.js';

// Spawned CLIs start tsx each time: generous bounds for loaded CI machines.
const SLOW = { timeout: 240_000 };
let qemu: QemuInstance;
/** A client on QEMU's second monitor, to cause events while the CLI holds the first. */
let side: QmpClient;
let sock: string;
let tmp: string;

/** A TCP port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

beforeAll(async () => {
  qemu = await startQemu({ argsFor: (d) => ['-qmp', `unix:${join(d, 'side.sock')},server=on,wait=off`] });
  sock = qemu.qmpPath;
  side = await QmpClient.connect({ path: join(qemu.dir, 'side.sock') });
  tmp = mkdtempSync(join(tmpdir(), 'lq-cli-'));
});
afterAll(async () => {
  await side?.close();
  await qemu?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('libqemu exec on a QMP socket', SLOW, () => {
  it('prints the result readably, or as one JSON line with --json', async () => {
    const readable = await runCli(['-s', sock, 'exec', 'query-status']);
    expect(readable).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(readable.stdout)).toMatchObject({ status: 'running', running: true });
    expect(readable.stdout).toContain('\n  "status": "running"');
    const json = await runCli(['--socket', sock, '--json', 'exec', 'qom-get', '{"path": "/machine", "property": "type"}']);
    expect(json.code).toBe(0);
    expect(json.stdout).toBe('"none-machine"\n');
  });

  it('types key=value pairs by the schema, and stops invalid ones before sending (exit 5)', async () => {
    const bad = await runCli(['-s', sock, 'exec', 'set_link', 'name=net0', 'up=maybe']);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/set_link\.up: expected a boolean, got "maybe"/);
    expect(bad.stderr).toMatch(/hint: /);
    // typed correctly, it reaches QEMU, which has no such NIC: a QMP error (exit 2), class in --json
    const qmp = await runCli(['-s', sock, '--json', 'exec', 'set_link', 'name=net0', 'up=off']);
    expect(qmp.code).toBe(2);
    expect(JSON.parse(qmp.stderr)).toMatchObject({ error: { class: 'DeviceNotFound', exitCode: 2, type: 'QmpCommandError' } });
    const unknown = await runCli(['-s', sock, 'exec', 'no-such-command']);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/no-such-command/);
  });

  it('runs HMP lines with --hmp', async () => {
    const r = await runCli(['-s', sock, 'exec', '--hmp', 'info', 'status']);
    expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/VM status: running/) });
  });

  it('tells failure kinds apart by exit code: usage 1, connection 6', async () => {
    const noTarget = await runCli(['exec', 'query-status']);
    expect(noTarget.code).toBe(1);
    expect(noTarget.stderr).toMatch(/no QEMU to talk to[\s\S]*hint: .*-d GUEST.*-s PATH or -s HOST:PORT/);
    const badPair = await runCli(['-s', sock, 'exec', 'query-status', 'oops']);
    expect(badPair.code).toBe(1);
    const badOption = await runCli(['--bogus']);
    expect(badOption.code).toBe(1);
    expect(badOption.stderr).toBe("libqemu: error: unknown option '--bogus'\n  hint: see libqemu --help\n");
    // --json covers usage errors too, commander's and ours
    const jsonUsage = await runCli(['--json', 'exec', '-s', sock]);
    expect(jsonUsage.code).toBe(1);
    expect(JSON.parse(jsonUsage.stderr)).toEqual({ error: { type: 'UsageError', message: "missing required argument 'command'", exitCode: 1, hint: 'see libqemu exec --help' } });
    const jsonNoCommand = await runCli(['--json']);
    expect(jsonNoCommand).toMatchObject({ code: 1, stdout: '' });
    expect(JSON.parse(jsonNoCommand.stderr)).toMatchObject({ error: { type: 'UsageError', message: 'which command?' } }); // nothing but the JSON line
    const jsonBadValue = await runCli(['--json', '--timeout', 'soon', 'exec', 'query-status']);
    expect(jsonBadValue.code).toBe(1);
    expect(JSON.parse(jsonBadValue.stderr)).toMatchObject({ error: { type: 'UsageError', message: expect.stringMatching(/--timeout must be a positive number/), exitCode: 1 } });
    const gone = await runCli(['-s', join(tmp, 'absent.sock'), '--json', 'exec', 'query-status']);
    expect(gone.code).toBe(6);
    expect(JSON.parse(gone.stderr)).toMatchObject({ error: { type: 'QmpClosedError', exitCode: 6, hint: expect.any(String) } });
  });
});

describe('libqemu on QMP over TCP (-s HOST:PORT)', SLOW, () => {
  it('runs exec and a shell on a TCP monitor', async () => {
    const port = await freePort();
    const q = await startQemu({ args: ['-qmp', `tcp:127.0.0.1:${port},server=on,wait=off`] });
    try {
      const r = await runCli(['-s', `127.0.0.1:${port}`, '--json', 'exec', 'query-status']);
      expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\{"status":"running"/) });
      const bad = await runCli(['-s', '127.0.0.1:99999', 'exec', 'query-status']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/port must be 1-65535/);
    } finally {
      await q.stop();
    }
  });
});

describe('libqemu shell like qmp-shell: transaction( … ), -v, -l FILE, exit codes', SLOW, () => {
  it('sends a transaction typed over several lines as one command, echoes it with -v and logs both ways with -l', async () => {
    const log = join(tmp, 'wire.log');
    const input = ['transaction(', 'block-dirty-bitmap-add node=nope name=bm0 persistent=false', 'block-dirty-bitmap-clear node=nope name=bm1 )', 'query-status', ''].join('\n');
    const r = await runCli(['-s', sock, 'shell', '--no-history', '-v', '-l', log], { input });
    // QEMU refuses the transaction (no such node): the piped shell ends with that QMP error's code
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^libqemu: error: transaction failed: GenericError: Cannot find device='nope'/m);
    const sent = r.stdout.split('\n').filter((l) => l.startsWith('{"execute"')).map((l) => JSON.parse(l) as { execute: string; arguments?: unknown });
    expect(sent.map((m) => m.execute)).toEqual(['transaction', 'query-status']);
    expect(sent[0]!.arguments).toEqual({
      actions: [
        { type: 'block-dirty-bitmap-add', data: { node: 'nope', name: 'bm0', persistent: false } }, // typed by the schema: a boolean
        { type: 'block-dirty-bitmap-clear', data: { node: 'nope', name: 'bm1' } },
      ],
    });
    const logged = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { direction: string; message: Record<string, unknown> });
    expect(logged.map((l) => `${l.direction}:${String(l.message.execute ?? (l.message.error ? 'error' : 'return'))}`)).toEqual(['out:transaction', 'in:error', 'out:query-status', 'in:return']);
    expect(statSync(log).mode & 0o777).toBe(0o600);
  });

  it('keeps secrets out of the -l log', async () => {
    const log = join(tmp, 'secret.log');
    await runCli(['-s', sock, 'shell', '--no-history', '-l', log], { input: 'change-vnc-password password=hunter2\n' });
    const text = readFileSync(log, 'utf8');
    expect(text).toContain('change-vnc-password');
    expect(text).not.toContain('hunter2');
  });

  it('exits 0 when every piped line worked, and names an unclosed transaction', async () => {
    const ok = await runCli(['-s', sock, 'shell', '--no-history'], { input: 'query-status\nquery-name\n' });
    expect(ok.code).toBe(0);
    const open = await runCli(['-s', sock, '--json', 'shell', '--no-history'], { input: 'transaction(\nblock-dirty-bitmap-add node=n name=b\n' });
    expect(open.code).toBe(1);
    expect(JSON.parse(open.stderr.trim())).toMatchObject({ error: { type: 'UsageError', message: expect.stringMatching(/inside transaction/) } });
  });
});

describe('libqemu schema and gen', SLOW, () => {
  it('describes a command with member types, lists by glob, and says so for an unknown name (exit 5)', async () => {
    const one = await runCli(['-s', sock, 'schema', 'set_link']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^command set_link\n  arguments:\n    name: str\n    up: bool\n  returns: \{\}/);
    const json = await runCli(['-s', sock, '--json', 'schema', 'query-status']);
    const info = JSON.parse(json.stdout) as { name: string; returns: { members: { name: string; type: { kind: string; values?: string[] } }[] } };
    expect(info.name).toBe('query-status');
    expect(info.returns.members.find((m) => m.name === 'status')?.type).toMatchObject({ kind: 'enum', values: expect.arrayContaining(['running', 'paused']) });
    const list = await runCli(['-s', sock, 'schema', 'query-c*', '--commands']);
    expect(list.stdout).toMatch(/^Commands \(\d+\):\n/);
    expect(list.stdout).toContain('  query-commands\n');
    expect(list.stdout).not.toContain('Events');
    const none = await runCli(['-s', sock, 'schema', 'no-such-thing']);
    expect(none.code).toBe(5);
    // enums are listed in full: every value a user may type after member=
    const enums = await runCli(['-s', sock, 'schema', 'query-status']);
    const statusLine = enums.stdout.split('\n').find((l) => l.trim().startsWith('status:'))!;
    for (const v of ['debug', 'inmigrate', 'running', 'paused', 'suspended', 'colo']) expect(statusLine).toContain(`"${v}"`);
    expect(statusLine).not.toContain('…');
  });

  it('gen writes a module from a QEMU binary and reports what it generated', async () => {
    const out = join(tmp, 'gen', 'types.ts');
    const r = await runCli(['gen', '--qemu', 'qemu-system-x86_64', '-o', out, '--save-schema', join(tmp, 'gen', 'schema.json')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/generated types for QEMU 7\.2\.\d+: \d+ commands, \d+ events/);
    expect(readFileSync(out, 'utf8')).toMatch(/'query-status'/);
    // the saved schema serves `schema --file` without any QEMU
    const fromFile = await runCli(['schema', '--file', join(tmp, 'gen', 'schema.json'), '--events', 'STOP']);
    expect(fromFile.stdout).toMatch(/^event STOP\n  data: none/);
  });
});

describe('libqemu events on a QMP socket', SLOW, () => {
  it('follows events filtered by name as JSON lines and exits after --count', async () => {
    const p = new CliProcess(['-s', sock, '--json', 'events', '-n', '2', 'STOP', 'RESUME']);
    try {
      await p.waitFor(/following events of socket .* \(STOP, RESUME\)/, 'stderr', 120_000);
      await side.execute('stop');
      await side.execute('cont');
      expect(await p.exited).toBe(0);
      const lines = p.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; source: string; timestamp: { seconds: number } });
      expect(lines.map((l) => l.event)).toEqual(['STOP', 'RESUME']);
      expect(lines[0]).toMatchObject({ source: 'qmp', timestamp: { seconds: expect.any(Number) } });
    } finally {
      await p.stop('SIGKILL');
    }
  });

  it('prints readable lines and stops cleanly on Ctrl-C (exit 0)', async () => {
    const p = new CliProcess(['-s', sock, 'events']);
    try {
      await p.waitFor(/following events of socket/, 'stderr', 120_000);
      await side.execute('stop');
      await side.execute('cont');
      await p.waitFor(/ qmp RESUME/);
      expect(p.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z qmp STOP\n/);
      expect(await p.stop('SIGINT')).toBe(0);
    } finally {
      await p.stop('SIGKILL');
    }
  });
});

describe('libqemu shell', SLOW, () => {
  it('runs piped commands: key=value, raw JSON, HMP mode, errors with hints, and carries on', async () => {
    const input = ['query-status', 'set_link name=net0 up=false', '.hmp', 'info status', '.qmp', '{"execute": "query-version"}', 'no-such-command', '.schema set_link', 'query-name'].join('\n');
    const r = await runCli(['-s', sock, 'shell', '--no-history'], { input: `${input}\n` });
    expect(r.code).toBe(2); // a piped shell reports its first failed line: set_link's QMP error
    expect(r.stdout).toContain('"status": "running"');
    expect(r.stdout).toContain('VM status: running');
    expect(r.stdout).toMatch(/"major": 7/);
    expect(r.stdout).toContain('command set_link');
    expect(r.stderr).toMatch(/error: set_link failed: DeviceNotFound: Device 'net0' not found\n  hint: /);
    expect(r.stderr).toMatch(/no-such-command/);
    expect(r.stdout.trim().endsWith('{}')).toBe(true); // query-name ran after the errors
    expect(r.stdout).not.toContain('qmp> '); // no prompt on a pipe
  });

  it('ends with exit code 6 when QEMU goes away under it', async () => {
    const q = await startQemu();
    const p = new CliProcess(['-s', q.qmpPath, 'shell', '--no-history']);
    try {
      p.child.stdin!.write('query-status\n');
      await p.waitFor(/"status": "running"/, 'stdout', 120_000);
      await q.kill();
      expect(await p.exited).toBe(6);
      expect(p.stderr).toMatch(/error: QMP connection closed: the QMP connection to socket .* was lost/);
      expect(p.stderr.match(/error:/g)).toHaveLength(1);
    } finally {
      await p.stop('SIGKILL');
      await q.stop();
    }
  });

  it('completes command and member names with Tab in a pseudo-terminal, and keeps history', async () => {
    const history = join(tmp, 'hist', 'history');
    const cmdline = `${process.execPath} ${BIN} -s ${sock} shell --history ${history}`;
    const child = spawn('script', ['-qfec', cmdline, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'vt100' } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    const waitOut = async (re: RegExp, from = 0) => {
      const deadline = Date.now() + 120_000;
      while (!re.test(out.slice(from))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} in: ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitOut(/qmp> /);
      let mark = out.length;
      child.stdin.write('query-statu\t');
      await waitOut(/query-status/, mark);
      child.stdin.write('\r');
      await waitOut(/"running": true[\s\S]*qmp> /, mark);
      mark = out.length;
      child.stdin.write('set_link na\t');
      await waitOut(/set_link name=/, mark);
      child.stdin.write('x up=fa\t');
      await waitOut(/up=false/, mark);
      child.stdin.write('\r');
      await waitOut(/DeviceNotFound[\s\S]*qmp> /, mark);
      // a line carrying a secret runs but stays out of the history file
      mark = out.length;
      child.stdin.write('change-vnc-password password=hunter2\r');
      await waitOut(/error[\s\S]*qmp> /, mark);
      // Ctrl-C drops a half-typed line; on an empty line it leaves
      mark = out.length;
      child.stdin.write('query-na');
      await waitOut(/query-na/, mark);
      child.stdin.write('\x03');
      await waitOut(/\^C[\s\S]*qmp> /, mark);
      child.stdin.write('\x03');
      expect(await exited).toBe(0);
      expect(readFileSync(history, 'utf8')).toBe('query-status\nset_link name=x up=false\n');
      expect(statSync(history).mode & 0o777).toBe(0o600);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('libqemu shell on a terminal', SLOW, () => {
  it('leaves on Ctrl-D with the terminal on a fresh line', async () => {
    const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} -s ${sock} shell --no-history`, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'vt100' } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    try {
      const deadline = Date.now() + 120_000;
      while (!out.includes('qmp> ')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no prompt in: ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      child.stdin.write('\x04');
      expect(await exited).toBe(0);
      // the prompt, readline's cursor move, then our newline (a pty turns it into \r\n)
      expect(out).toMatch(/qmp> (?:\x1b\[\d+G)?\r?\n$/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('libqemu proxy on a QMP socket', SLOW, () => {
  it('serves several clients, and stops on SIGINT removing its socket', async () => {
    const listen = join(tmp, 'proxy', 'p.sock');
    const p = new CliProcess(['-s', sock, 'proxy', '--listen', listen]);
    try {
      await p.waitFor(/serving socket .* on .*p\.sock/, 'stdout', 120_000);
      expect(statSync(listen).mode & 0o777).toBe(0o600);
      const [a, b] = await Promise.all([QmpClient.connect({ path: listen }), QmpClient.connect({ path: listen })]);
      const stopped = b.waitForEvent('STOP', { timeoutMs: 10_000 });
      await a.execute('stop');
      await stopped;
      expect(await b.execute('query-status')).toMatchObject({ status: 'paused' });
      await a.execute('cont');
      await Promise.all([a.close(), b.close()]);
      expect(await p.stop('SIGINT')).toBe(0);
      expect(existsSync(listen)).toBe(false);
    } finally {
      await p.stop('SIGKILL');
    }
  });
});
