/**
 * A private, unprivileged libvirtd for tests, demos and benchmarks: session mode, every file it writes
 * inside one temporary directory, run as uid 65534 when we are root, under `tini -s` (QEMU is
 * double-forked: without a reaping subreaper every destroy waits for PID 1, ~1.7 s here). See
 * shared research host-feasibility.md §1A/§8/§9. Stopped and removed by PID; a watchdog process removes it
 * too if this process dies without cleaning up (SIGKILL).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LibqemuError, InvalidArgumentError } from '../common/errors.js';

export interface PrivateLibvirtd {
  /** The temp dir holding all state (kept short: unix socket paths max 107 bytes). */
  readonly base: string;
  /** qemu+unix:///session?socket=<base>/run/libvirt/libvirt-sock */
  readonly uri: string;
  /** A 0700 dir writable by the daemon's uid, for second-monitor sockets. */
  readonly qmpDir: string;
  /** The uid QEMU runs as (65534 when we are root, else our own). */
  readonly uid: number;
  /** The libvirtd process id. */
  readonly pid: number;
  /** The domain log QEMU writes (stdio_handler = "file"): <base>/cache/libvirt/qemu/log/<name>.log */
  domainLogPath(name: string): string;
  /** Kills the domains' QEMU processes (destroying them; their definitions vanish with `base`), libvirtd and its reaper by PID, removes `base`. */
  stop(): Promise<void>;
}

export class PrivateLibvirtdError extends LibqemuError {}

export interface StartPrivateLibvirtdOptions {
  /** Prefix of the temp dir name (default 'lvt'); keep it short. */
  prefix?: string;
  signal?: AbortSignal;
  /** How long to wait for the socket to answer (default 15 000 ms). */
  timeoutMs?: number;
}

const MAX_UNIX_PATH = 107;
const live = new Set<Daemon>();
let hooksInstalled = false;

/** Where QEMU capability probes are kept between daemons (a cold probe costs ~0.6 s, a warm one ~0.1 s). */
function capsCacheDir(): string {
  const root = process.env.XDG_CACHE_HOME || join(homedir() || tmpdir(), '.cache');
  return join(root, 'libqemu', 'qemu-capabilities');
}

interface Daemon {
  base: string;
  tini: ChildProcess;
  watchdog: ChildProcess | undefined;
  stopped: boolean;
  stopping?: Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

function readProc(pid: number, what: 'cmdline' | 'environ'): string {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'latin1').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** PIDs of this daemon's QEMU processes and of libvirtd, each checked to belong to `base`. */
function ownedPids(base: string): { qemu: number[]; libvirtd: number | undefined } {
  const qemu: number[] = [];
  const runDir = join(base, 'run', 'libvirt', 'qemu', 'run');
  let files: string[] = [];
  try {
    files = readdirSync(runDir).filter((f) => f.endsWith('.pid'));
  } catch {
    // no domain ever started
  }
  for (const f of files) {
    const pid = readPid(join(runDir, f));
    if (pid && readProc(pid, 'cmdline').includes(base)) qemu.push(pid);
  }
  let libvirtd = readPid(join(base, 'run', 'libvirt', 'libvirtd.pid'));
  if (libvirtd && !(readProc(libvirtd, 'cmdline').includes('libvirtd') && readProc(libvirtd, 'environ').includes(base))) libvirtd = undefined;
  return { qemu, libvirtd };
}

/** Synchronous last-resort cleanup (process exit / signals): SIGKILL by checked PID, then rm -rf. */
function killNow(d: Daemon): void {
  if (d.stopped) return;
  d.stopped = true;
  const { qemu, libvirtd } = ownedPids(d.base);
  for (const pid of qemu) safeKill(pid, 'SIGKILL');
  if (libvirtd) safeKill(libvirtd, 'SIGKILL');
  if (d.tini.pid && d.tini.exitCode === null) safeKill(d.tini.pid, 'SIGKILL');
  if (d.watchdog?.pid) safeKill(d.watchdog.pid, 'SIGKILL');
  rmSync(d.base, { recursive: true, force: true });
  live.delete(d);
}

function safeKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const d of [...live]) killNow(d);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const d of [...live]) killNow(d);
      process.off(sig, handler);
      // Default behaviour again: die by the same signal, unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** A shell that outlives us only to clean up if we die without doing so (e.g. SIGKILL). */
const WATCHDOG = `
parent=$1 base=$2 tini=$3
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
for f in "$base"/run/libvirt/qemu/run/*.pid "$base"/run/libvirt/libvirtd.pid; do
  [ -f "$f" ] || continue; pid=$(cat "$f")
  if tr '\\0' ' ' </proc/$pid/environ 2>/dev/null | grep -qF "$base" || tr '\\0' ' ' </proc/$pid/cmdline 2>/dev/null | grep -qF "$base"; then kill -9 "$pid"; fi
done
tr '\\0' ' ' </proc/$tini/cmdline 2>/dev/null | grep -qF "$base" && kill -9 "$tini"
rm -rf "$base"
`;

export async function startPrivateLibvirtd(options: StartPrivateLibvirtdOptions = {}): Promise<PrivateLibvirtd> {
  const prefix = options.prefix ?? 'lvt';
  if (!/^[A-Za-z0-9_.-]{1,16}$/.test(prefix)) {
    throw new InvalidArgumentError(`startPrivateLibvirtd: prefix must be 1-16 of [A-Za-z0-9_.-], got ${JSON.stringify(prefix)}`, { hint: 'keep it short: unix socket paths are limited to 107 bytes' });
  }
  const timeoutMs = options.timeoutMs ?? 15_000;
  options.signal?.throwIfAborted();
  for (const bin of ['/usr/sbin/libvirtd', '/usr/bin/tini']) {
    if (!existsSync(bin)) {
      throw new PrivateLibvirtdError(`${bin} is missing`, { hint: 'run scripts/host-setup.sh (as root) to install libvirt-daemon, libvirt-daemon-driver-qemu and tini' });
    }
  }
  const isRoot = process.getuid?.() === 0;
  const uid = isRoot ? 65534 : process.getuid!();
  const gid = isRoot ? 65534 : process.getgid!();
  const base = mkdtempSync(join(tmpdir().length <= 8 ? tmpdir() : '/tmp', `${prefix}-`));
  const socket = join(base, 'run', 'libvirt', 'libvirt-sock');
  // QEMU's own monitor lives deepest: <base>/config/libvirt/qemu/lib/domain-<id>-<name>/monitor.sock (name ≤ 20 chars budgeted).
  const deepest = join(base, 'config/libvirt/qemu/lib/domain-9999-xxxxxxxxxxxxxxxxxxxx/monitor.sock');
  if (deepest.length > MAX_UNIX_PATH) {
    rmSync(base, { recursive: true, force: true });
    throw new PrivateLibvirtdError(`temp dir ${base} is too long for unix socket paths (${deepest.length} > ${MAX_UNIX_PATH})`, { hint: 'set TMPDIR to a short path such as /tmp' });
  }
  const qmpDir = join(base, 'qmp');
  try {
    for (const d of ['config/libvirt', 'cache/libvirt/qemu/capabilities', 'run', 'data', 'logs', 'qmp']) mkdirSync(join(base, d), { recursive: true, mode: 0o700 });
    writeFileSync(join(base, 'config/libvirt/qemu.conf'), 'stdio_handler = "file"\n');
    writeFileSync(join(base, 'config/libvirt/libvirtd.conf'), `log_outputs = "3:file:${join(base, 'logs/libvirtd.log')}"\n`);
    const cache = capsCacheDir();
    if (existsSync(cache)) {
      for (const f of readdirSync(cache).filter((x) => x.endsWith('.xml'))) copyFileSync(join(cache, f), join(base, 'cache/libvirt/qemu/capabilities', f));
    }
    if (isRoot) chownTree(base, uid, gid);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }

  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C',
    HOME: base,
    XDG_CONFIG_HOME: join(base, 'config'),
    XDG_CACHE_HOME: join(base, 'cache'),
    XDG_RUNTIME_DIR: join(base, 'run'),
    XDG_DATA_HOME: join(base, 'data'),
  };
  const cmd = isRoot
    ? ['-s', '--', '/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '/usr/sbin/libvirtd']
    : ['-s', '--', '/usr/sbin/libvirtd'];
  const tini = spawn('/usr/bin/tini', cmd, { env, cwd: base, stdio: ['ignore', 'ignore', 'ignore'], detached: true });
  tini.unref();
  const daemon: Daemon = { base, tini, watchdog: undefined, stopped: false };
  live.add(daemon);
  installHooks();
  if (tini.pid) {
    daemon.watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'watchdog', String(process.pid), base, String(tini.pid)], { stdio: 'ignore', detached: true });
    daemon.watchdog.unref();
  }

  try {
    await waitForSocket(socket, timeoutMs, tini, options.signal);
  } catch (err) {
    killNow(daemon);
    throw err;
  }
  const pid = ownedPids(base).libvirtd ?? tini.pid ?? 0;
  const uri = `qemu+unix:///session?socket=${socket}`;

  return {
    base,
    uri,
    qmpDir,
    uid,
    pid,
    domainLogPath: (name) => join(base, 'cache/libvirt/qemu/log', `${name}.log`),
    stop: () => (daemon.stopping ??= stopDaemon(daemon, uri)),
  };
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

async function waitForSocket(path: string, timeoutMs: number, tini: ChildProcess, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (tini.exitCode !== null || tini.signalCode !== null) {
      throw new PrivateLibvirtdError(`libvirtd exited during startup (${tini.exitCode ?? tini.signalCode})`, { hint: 'see <base>/logs/libvirtd.log; is another daemon using the same directory?' });
    }
    if (existsSync(path) && (await answers(path))) return;
    if (Date.now() > deadline) throw new PrivateLibvirtdError(`libvirtd did not answer on ${path} within ${timeoutMs} ms`, { hint: 'the machine may be overloaded: raise timeoutMs' });
    await new Promise((r) => setTimeout(r, 20));
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (_err, stdout) => resolve(stdout ?? ''));
  });
}

async function stopDaemon(d: Daemon, uri: string): Promise<void> {
  if (d.stopped) return;
  // Save a fresh capabilities probe for the next daemon.
  try {
    const mine = join(d.base, 'cache/libvirt/qemu/capabilities');
    const cache = capsCacheDir();
    const files = existsSync(mine) ? readdirSync(mine).filter((f) => f.endsWith('.xml')) : [];
    if (files.length > 0) {
      mkdirSync(cache, { recursive: true, mode: 0o700 });
      for (const f of files) if (!existsSync(join(cache, f))) copyFileSync(join(mine, f), join(cache, f));
    }
  } catch {
    // only a cache
  }
  // Destroy and undefine the domains through libvirt (one virsh per step), then make sure by PID.
  const names = existsSync('/usr/bin/virsh')
    ? (await run('/usr/bin/virsh', ['-q', '-c', uri, 'list', '--all', '--name'], 5000)).split('\n').map((s) => s.trim()).filter(Boolean)
    : [];
  if (names.length > 0) {
    const script = names.map((n) => `destroy '${n}'; undefine '${n}'`).join('; ');
    await run('/usr/bin/virsh', ['-q', '-c', uri, script], 10_000);
  }
  if (d.stopped) return;
  d.stopped = true;
  const { qemu, libvirtd } = ownedPids(d.base);
  for (const pid of qemu) safeKill(pid, 'SIGKILL');
  if (libvirtd) safeKill(libvirtd, 'SIGTERM');
  const deadline = Date.now() + 3000;
  const pending = (): boolean => (libvirtd !== undefined && pidAlive(libvirtd)) || qemu.some(pidAlive) || d.tini.exitCode === null;
  while (pending() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (libvirtd && pidAlive(libvirtd)) safeKill(libvirtd, 'SIGKILL');
  if (d.tini.pid && d.tini.exitCode === null) safeKill(d.tini.pid, 'SIGKILL');
  if (d.watchdog?.pid) safeKill(d.watchdog.pid, 'SIGKILL');
  rmSync(d.base, { recursive: true, force: true });
  live.delete(d);
}

/** Options for tinyGuestXml. */
export interface TinyGuestOptions {
  name: string;
  memoryMiB?: number;
  /** Adds a second QMP monitor: -qmp unix:<qmpSocket>,server=on,wait=off */
  qmpSocket?: string;
  /** Boots this kernel (e.g. a tiny multiboot kernel) instead of sitting in SeaBIOS. */
  kernel?: string;
  uuid?: string;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** A minimal TCG guest: type='qemu', pc, 64 MiB, no disk, no video, no balloon (stays running in SeaBIOS at ~1 % CPU). */
export function tinyGuestXml(options: TinyGuestOptions): string {
  const { name, memoryMiB = 64, qmpSocket, kernel, uuid } = options;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,40}$/.test(name)) {
    throw new InvalidArgumentError(`tinyGuestXml: name must be 1-40 of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`, { hint: 'short names keep the monitor socket path under 107 bytes' });
  }
  if (!Number.isInteger(memoryMiB) || memoryMiB < 16) throw new InvalidArgumentError(`tinyGuestXml: memoryMiB must be an integer ≥ 16, got ${String(memoryMiB)}`);
  if (qmpSocket !== undefined && (qmpSocket.length > MAX_UNIX_PATH || qmpSocket.includes(','))) {
    throw new InvalidArgumentError(`tinyGuestXml: qmpSocket must be a path ≤ ${MAX_UNIX_PATH} bytes without commas`, { hint: 'put it in PrivateLibvirtd.qmpDir' });
  }
  const lines = [
    `<domain type='qemu'${qmpSocket ? " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" : ''}>`,
    `  <name>${xmlEscape(name)}</name>`,
    ...(uuid ? [`  <uuid>${xmlEscape(uuid)}</uuid>`] : []),
    `  <memory unit='MiB'>${memoryMiB}</memory>`,
    '  <vcpu>1</vcpu>',
    '  <os>',
    "    <type arch='x86_64' machine='pc'>hvm</type>",
    ...(kernel ? [`    <kernel>${xmlEscape(kernel)}</kernel>`] : []),
    '  </os>',
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    '    <emulator>/usr/bin/qemu-system-x86_64</emulator>',
    "    <video><model type='none'/></video>",
    "    <memballoon model='none'/>",
    '  </devices>',
    ...(qmpSocket
      ? ['  <qemu:commandline>', "    <qemu:arg value='-qmp'/>", `    <qemu:arg value='unix:${xmlEscape(qmpSocket)},server=on,wait=off'/>`, '  </qemu:commandline>']
      : []),
    '</domain>',
  ];
  return lines.join('\n') + '\n';
}
