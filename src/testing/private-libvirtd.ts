/**
 * A private, unprivileged libvirtd for tests, demos and benchmarks: session mode, every file it writes
 * inside one temporary directory, run as uid 65534 when we are root, under `tini -s` (QEMU is
 * double-forked: without a reaping subreaper every destroy waits for PID 1, ~1.7 s here). Session mode
 * because a system-mode daemon needs root-owned paths and polkit; uid 65534 because QEMU refuses nothing
 * there and the daemon then cannot touch the host's files. Stopped by sweeping every process that names its directory
 * (src/testing/process-sweep.ts), then removed; a watchdog process does the same if this process dies
 * without cleaning up (SIGKILL).
 */
import { declareSameHostUuid } from '../domain/host-identity.js';
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { LibqemuError, InvalidArgumentError } from '../common/errors.js';
import { probeSocket } from '../common/unix-socket.js';
import { closingLines, openingLines, xmlEscape } from './guest-xml.js';
import { sweep, sweepSync, type SweepOptions } from './process-sweep.js';

export interface PrivateLibvirtd {
  /** The temp dir holding all state (kept short: unix socket paths max 107 bytes). */
  readonly base: string;
  /** qemu+unix:///session?socket=<base>/run/libvirt/libvirt-sock */
  readonly uri: string;
  /** A 0700 dir writable by the daemon's uid, for second-monitor sockets. */
  readonly qmpDir: string;
  /** The uid QEMU runs as (65534 when we are root, else our own). */
  readonly uid: number;
  /** The libvirtd process id (a new one after restart()). */
  readonly pid: number;
  /**
   * With `tcp`: `qemu+tcp://127.0.0.1:PORT/session`, the same daemon reached over libvirt's remote
   * protocol on loopback (no authentication: the port is bound to 127.0.0.1 only).
   */
  readonly tcpUri: string | undefined;
  /** The domain log QEMU writes (stdio_handler = "file"): <base>/cache/libvirt/qemu/log/<name>.log */
  domainLogPath(name: string): string;
  /**
   * Restarts libvirtd itself, as an upgrade or `systemctl restart libvirtd` would: the daemon is stopped
   * (SIGTERM, SIGKILL after `timeoutMs`), the guests' QEMU processes keep running, and a new daemon on the
   * same directory, URI(s) and port takes them over. Resolves once the new daemon answers. Connections
   * open on the old daemon see it close; that is what this is for (testing recovery).
   */
  restart(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
  /** Kills libvirtd (SIGKILL) without restarting it; the guests keep running. For testing a daemon that is gone. */
  kill(): Promise<void>;
  /**
   * Ends every process that belongs to `base` (libvirtd, its reaper, the domains' QEMU, a QEMU
   * capabilities probe still running: SIGTERM, then SIGKILL) and removes `base` with every definition.
   * Fails with PrivateLibvirtdError if a process or the directory survives that.
   */
  stop(): Promise<void>;
}

export class PrivateLibvirtdError extends LibqemuError {}

export interface StartPrivateLibvirtdOptions {
  /** Prefix of the temp dir name (default 'lvt'); keep it short. */
  prefix?: string;
  signal?: AbortSignal;
  /** How long to wait for the socket to answer (default 15 000 ms). */
  timeoutMs?: number;
  /**
   * libvirtd.conf host_uuid (default: a fresh random one). Two daemons with the same host UUID refuse to
   * migrate to each other ("same host"); on hosts with SMBIOS both would otherwise report the machine's.
   */
  hostUuid?: string;
  /**
   * Whether the daemon counts as running on this machine when reached over TCP (its guests' second
   * monitors reachable): its host UUID is then declared in LIBQEMU_SAME_HOST_UUIDS for this process and
   * its children. Default: true, unless `hostUuid` is given, so a daemon with a host UUID of its own
   * stands for another host (`guest.qmp()` then takes passthrough over its TCP URI).
   */
  sameHost?: boolean;
  /** qemu.conf migration_port_min/max, so daemons side by side listen on disjoint ports (default: libvirt's 49152-49215). */
  migrationPorts?: { min: number; max: number };
  /**
   * Also listen on TCP, on 127.0.0.1 only, without authentication (`listen_tcp`, `auth_tcp = "none"`,
   * `--listen`): `tcpUri` then reaches the same daemon over libvirt's remote protocol. `port` defaults to a
   * free port picked at start.
   */
  tcp?: boolean | { port?: number };
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
  uid: number;
  gid: number;
  args: string[];
  socket: string;
  tini: ChildProcess;
  watchdog: ChildProcess | undefined;
  stopped: boolean;
  stopping?: Promise<void>;
}

function readProc(pid: number, what: 'cmdline' | 'environ'): string {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'latin1').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** libvirtd's PID from its pid file, checked to be this daemon's. */
function libvirtdPid(base: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(base, 'run', 'libvirt', 'libvirtd.pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    return readProc(pid, 'cmdline').includes('libvirtd') && readProc(pid, 'environ').includes(base) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Who belongs to the daemon: its process tree while its reaper is ours to vouch for, and anything naming `base`. */
function sweepOptions(d: Daemon): SweepOptions {
  // Until Node has reaped tini, its PID cannot have been reused.
  const root = d.tini.pid !== undefined && d.tini.exitCode === null && d.tini.signalCode === null ? d.tini.pid : undefined;
  return { root, uid: process.getuid?.() === 0 ? d.uid : undefined };
}

/** Removes `base`, retrying while a dying process may still be writing into it. */
function removeBase(base: string): void {
  rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
}

/** Synchronous last-resort cleanup (process exit / signals): SIGKILL everything that belongs to `base`, then rm -rf. */
function killNow(d: Daemon): void {
  if (d.stopped) return;
  d.stopped = true;
  sweepSync(d.base, sweepOptions(d));
  if (d.tini.pid && d.tini.exitCode === null) safeKill(d.tini.pid, 'SIGKILL');
  if (d.watchdog?.pid) safeKill(d.watchdog.pid, 'SIGKILL');
  try {
    removeBase(d.base);
  } catch {
    // at exit there is no one to tell; the watchdog tries again
  }
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

/**
 * A shell that outlives us only to clean up if we die without doing so (e.g. SIGKILL): it kills every
 * process whose command line or environment names a path under `base` (every daemon process does, the
 * capabilities probe too), a few times over in case one was being spawned, then removes `base`.
 */
const WATCHDOG = `
parent=$1 base=$2
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
for round in 1 2 3; do
  for f in $(grep -lzF -e "$base/" /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null); do
    pid=\${f#/proc/}; pid=\${pid%%/*}
    [ "$pid" = "$$" ] || kill -9 "$pid" 2>/dev/null
  done
  sleep 0.2
done
rm -rf "$base" || { sleep 0.5; rm -rf "$base"; }
`;

export async function startPrivateLibvirtd(options: StartPrivateLibvirtdOptions = {}): Promise<PrivateLibvirtd> {
  const prefix = options.prefix ?? 'lvt';
  if (!/^[A-Za-z0-9_.-]{1,16}$/.test(prefix)) {
    throw new InvalidArgumentError(`startPrivateLibvirtd: prefix must be 1-16 of [A-Za-z0-9_.-], got ${JSON.stringify(prefix)}`, { hint: 'keep it short: unix socket paths are limited to 107 bytes' });
  }
  const timeoutMs = options.timeoutMs ?? 15_000;
  const tcpOption = options.tcp;
  if (tcpOption !== undefined && typeof tcpOption !== 'boolean') {
    const port = typeof tcpOption === 'object' && tcpOption !== null ? tcpOption.port : undefined;
    if (typeof tcpOption !== 'object' || tcpOption === null || (port !== undefined && !(Number.isInteger(port) && port >= 1024 && port <= 65535))) {
      throw new InvalidArgumentError(`startPrivateLibvirtd: tcp must be true or { port } with 1024 ≤ port ≤ 65535, got ${JSON.stringify(tcpOption)}`);
    }
  }
  if (options.hostUuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(options.hostUuid)) {
    throw new InvalidArgumentError(`startPrivateLibvirtd: hostUuid must be a UUID, got ${JSON.stringify(options.hostUuid)}`);
  }
  const mp = options.migrationPorts;
  if (mp !== undefined && !(Number.isInteger(mp.min) && Number.isInteger(mp.max) && mp.min >= 1024 && mp.min <= mp.max && mp.max <= 65535)) {
    throw new InvalidArgumentError(`startPrivateLibvirtd: migrationPorts must be { min, max } with 1024 ≤ min ≤ max ≤ 65535, got ${JSON.stringify(mp)}`);
  }
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
    for (const d of ['config/libvirt', 'cache/libvirt/qemu/cache/capabilities', 'run', 'data', 'logs', 'qmp']) mkdirSync(join(base, d), { recursive: true, mode: 0o700 });
    const ports = options.migrationPorts ? `migration_port_min = ${options.migrationPorts.min}\nmigration_port_max = ${options.migrationPorts.max}\n` : '';
    writeFileSync(join(base, 'config/libvirt/qemu.conf'), `stdio_handler = "file"\n${ports}`);
    const hostUuid = options.hostUuid ?? randomUUID();
    if (options.sameHost ?? options.hostUuid === undefined) declareSameHostUuid(hostUuid);
    writeFileSync(join(base, 'config/libvirt/libvirtd.conf'), `log_outputs = "3:file:${join(base, 'logs/libvirtd.log')}"\nhost_uuid = "${hostUuid}"\n`);
    const cache = capsCacheDir();
    if (existsSync(cache)) {
      for (const f of readdirSync(cache).filter((x) => x.endsWith('.xml'))) copyFileSync(join(cache, f), join(base, 'cache/libvirt/qemu/cache/capabilities', f));
    }
    if (isRoot) chownTree(base, uid, gid);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }

  const tcpPort = options.tcp ? (typeof options.tcp === 'object' && options.tcp.port !== undefined ? options.tcp.port : await freeTcpPort()) : undefined;
  if (tcpPort !== undefined) {
    // 127.0.0.1 only and no TLS: `auth_tcp = "none"` is safe only because nothing off this machine can connect.
    const conf = join(base, 'config/libvirt/libvirtd.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8') + `listen_tcp = 1\nlisten_tls = 0\nlisten_addr = "127.0.0.1"\ntcp_port = "${tcpPort}"\nauth_tcp = "none"\n`);
    if (isRoot) chownSync(conf, uid, gid);
  }
  const args = tcpPort !== undefined ? ['--listen'] : [];
  const daemon: Daemon = { base, uid, gid, args, socket, tini: spawnLibvirtd(base, uid, gid, args), watchdog: undefined, stopped: false };
  live.add(daemon);
  installHooks();
  if (daemon.tini.pid) {
    daemon.watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'watchdog', String(process.pid), base], { stdio: 'ignore', detached: true });
    daemon.watchdog.unref();
  }

  try {
    await waitForDaemon(daemon, tcpPort, timeoutMs, options.signal);
  } catch (err) {
    killNow(daemon);
    throw err;
  }
  const uri = `qemu+unix:///session?socket=${socket}`;

  return {
    base,
    uri,
    tcpUri: tcpPort !== undefined ? `qemu+tcp://127.0.0.1:${tcpPort}/session` : undefined,
    qmpDir,
    uid,
    get pid() {
      return libvirtdPid(base) ?? daemon.tini.pid ?? 0;
    },
    domainLogPath: (name) => join(base, 'cache/libvirt/qemu/log', `${name}.log`),
    restart: async (opts = {}) => {
      if (daemon.stopped) throw new PrivateLibvirtdError(`the private libvirtd in ${base} was stopped`, { hint: 'start a new one with startPrivateLibvirtd()' });
      await endLibvirtd(daemon, opts.timeoutMs ?? timeoutMs);
      daemon.tini = spawnLibvirtd(base, uid, gid, args);
      try {
        await waitForDaemon(daemon, tcpPort, opts.timeoutMs ?? timeoutMs, opts.signal);
      } catch (err) {
        killNow(daemon);
        throw err;
      }
    },
    kill: async () => {
      if (daemon.stopped) return;
      await endLibvirtd(daemon, 0);
    },
    stop: () => (daemon.stopping ??= stopDaemon(daemon)),
  };
}

/** libvirtd under `tini -s` (a subreaper, so the domains' double-forked QEMU is reaped), as `uid` when we are root. */
function spawnLibvirtd(base: string, uid: number, gid: number, args: string[]): ChildProcess {
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C',
    HOME: base,
    XDG_CONFIG_HOME: join(base, 'config'),
    XDG_CACHE_HOME: join(base, 'cache'),
    XDG_RUNTIME_DIR: join(base, 'run'),
    XDG_DATA_HOME: join(base, 'data'),
  };
  const cmd =
    process.getuid?.() === 0
      ? ['-s', '--', '/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '/usr/sbin/libvirtd', ...args]
      : ['-s', '--', '/usr/sbin/libvirtd', ...args];
  const tini = spawn('/usr/bin/tini', cmd, { env, cwd: base, stdio: ['ignore', 'ignore', 'ignore'], detached: true });
  tini.unref();
  return tini;
}

/**
 * Ends libvirtd only (SIGTERM, then SIGKILL after `graceMs`; 0 = SIGKILL at once): the domains' QEMU
 * processes are not its children any more (QEMU daemonizes) and keep running, as on a real host.
 */
async function endLibvirtd(d: Daemon, graceMs: number): Promise<void> {
  const pid = libvirtdPid(d.base);
  const tini = d.tini;
  const gone = (): boolean => (pid === undefined || !existsSync(`/proc/${pid}`)) && (tini.exitCode !== null || tini.signalCode !== null || tini.pid === undefined || !existsSync(`/proc/${tini.pid}`));
  if (pid !== undefined) safeKill(pid, graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
  const deadline = Date.now() + graceMs;
  while (!gone()) {
    if (Date.now() >= deadline) {
      if (pid !== undefined) safeKill(pid, 'SIGKILL');
      if (tini.pid !== undefined) safeKill(tini.pid, 'SIGKILL');
      if (Date.now() >= deadline + 5_000) throw new PrivateLibvirtdError(`libvirtd (pid ${pid ?? '?'}) of ${d.base} did not exit`, { hint: 'it may be stuck in the kernel (D state)' });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // A fresh daemon must not find the old one's pid file and socket and think another daemon runs.
  rmSync(join(d.base, 'run', 'libvirt', 'libvirtd.pid'), { force: true });
}

/** Waits until the daemon answers on its unix socket (a fresh one: the pid file is back) and, with TCP, on its port. */
async function waitForDaemon(d: Daemon, tcpPort: number | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // After a restart the old daemon's socket file may still be there: only the new daemon's pid file says it is up.
  const pidFile = join(dirname(d.socket), 'libvirtd.pid');
  await waitForListener(d.socket, () => existsSync(d.socket) && existsSync(pidFile), { deadline, timeoutMs, tini: d.tini, signal }, 'the machine may be overloaded: raise timeoutMs');
  if (tcpPort !== undefined) {
    await waitForListener({ host: '127.0.0.1', port: tcpPort }, () => true, { deadline, timeoutMs, tini: d.tini, signal }, 'is the port taken? pass tcp: { port } with a free one, or omit it');
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1 (the kernel's pick for port 0). */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}


function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

/** Polls until `target` accepts connections once `ready()` holds; fails at once if libvirtd (its reaper) exited. */
async function waitForListener(
  target: string | { host: string; port: number },
  ready: () => boolean,
  w: { deadline: number; timeoutMs: number; tini: ChildProcess; signal: AbortSignal | undefined },
  hint: string,
): Promise<void> {
  const where = typeof target === 'string' ? target : `${target.host}:${target.port}`;
  for (;;) {
    w.signal?.throwIfAborted();
    if (w.tini.exitCode !== null || w.tini.signalCode !== null) {
      throw new PrivateLibvirtdError(`libvirtd exited during startup (${w.tini.exitCode ?? w.tini.signalCode})`, { hint: 'see <base>/logs/libvirtd.log; is another daemon using the same directory?' });
    }
    if (ready() && (await probeSocket(target, 1000)) === 'open') return;
    if (Date.now() > w.deadline) throw new PrivateLibvirtdError(`libvirtd did not answer on ${where} within ${w.timeoutMs} ms`, { hint });
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.stopped) return;
  // Save a fresh capabilities probe for the next daemon.
  try {
    const mine = join(d.base, 'cache/libvirt/qemu/cache/capabilities');
    const cache = capsCacheDir();
    const files = existsSync(mine) ? readdirSync(mine).filter((f) => f.endsWith('.xml')) : [];
    if (files.length > 0) {
      mkdirSync(cache, { recursive: true, mode: 0o700 });
      for (const f of files) {
        // One file per emulator binary (named by its path's hash): replace it when libvirt re-probed (e.g.
        // a QEMU upgrade), atomically, since other daemons may be copying it right now.
        const fresh = readFileSync(join(mine, f));
        const target = join(cache, f);
        if (existsSync(target) && readFileSync(target).equals(fresh)) continue;
        const tmp = `${target}.${process.pid}.tmp`;
        writeFileSync(tmp, fresh, { mode: 0o600 });
        renameSync(tmp, target);
      }
    }
  } catch {
    // only a cache
  }
  d.stopped = true;
  // libvirtd, tini, the domains' QEMU and a capabilities probe libvirt may still be running (daemonized, so
  // not a child of libvirtd any more): SIGTERM, then SIGKILL whatever is left. No need to destroy the
  // domains through libvirt first (virsh cost ~0.5 s): QEMU quits on SIGTERM, and every definition, log and
  // socket lives in `base`.
  const survivors = await sweep(d.base, sweepOptions(d));
  if (d.tini.pid && d.tini.exitCode === null) safeKill(d.tini.pid, 'SIGKILL');
  if (d.watchdog?.pid) safeKill(d.watchdog.pid, 'SIGKILL');
  live.delete(d);
  if (survivors.length > 0) {
    throw new PrivateLibvirtdError(`processes of ${d.base} survived SIGKILL: ${survivors.map((p) => p.pid).join(', ')}`, { hint: 'they may be stuck in the kernel (D state); see ps -o pid,stat,cmd -p <pid>' });
  }
  removeBase(d.base);
  if (existsSync(d.base)) throw new PrivateLibvirtdError(`could not remove ${d.base}`, { hint: 'remove it by hand' });
}

/** Options for tinyGuestXml. */
export interface TinyGuestOptions {
  name: string;
  memoryMiB?: number;
  /** Adds a second QMP monitor: -qmp unix:<qmpSocket>,server=on,wait=off */
  qmpSocket?: string;
  /** Boots this kernel (e.g. a tiny multiboot kernel) instead of sitting in SeaBIOS. */
  kernel?: string;
  /** The kernel's command line (with `kernel`). */
  cmdline?: string;
  uuid?: string;
  /**
   * Adds a NIC that works unprivileged in session mode, as examples/demo.ts builds it: QEMU's user-mode
   * network (`<interface type='user'>`), no option ROM. `model` defaults to 'e1000'; `id` becomes libvirt's
   * alias and QEMU's device id (libvirt wants user aliases to start with 'ua-'); without it libvirt picks
   * one (net0, net1…).
   */
  nic?: { model?: string; id?: string };
}


/** A minimal TCG guest: type='qemu', pc, 64 MiB, no disk, no video, no balloon (stays running in SeaBIOS at ~1 % CPU). */
export function tinyGuestXml(options: TinyGuestOptions): string {
  const { name, memoryMiB = 64, qmpSocket, kernel, cmdline, uuid, nic } = options;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,40}$/.test(name)) {
    throw new InvalidArgumentError(`tinyGuestXml: name must be 1-40 of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`, { hint: 'short names keep the monitor socket path under 107 bytes' });
  }
  if (!Number.isInteger(memoryMiB) || memoryMiB < 16) throw new InvalidArgumentError(`tinyGuestXml: memoryMiB must be an integer ≥ 16, got ${String(memoryMiB)}`);
  if (qmpSocket !== undefined && (qmpSocket.length > MAX_UNIX_PATH || qmpSocket.includes(','))) {
    throw new InvalidArgumentError(`tinyGuestXml: qmpSocket must be a path ≤ ${MAX_UNIX_PATH} bytes without commas`, { hint: 'put it in PrivateLibvirtd.qmpDir' });
  }
  const nicXml = nic === undefined ? [] : [nicElement(nic)];
  const lines = [
    ...openingLines({ name, uuid, memoryMiB, qmpSocket }),
    ...(kernel ? [`    <kernel>${xmlEscape(kernel)}</kernel>`] : []),
    ...(kernel && cmdline !== undefined ? [`    <cmdline>${xmlEscape(cmdline)}</cmdline>`] : []),
    '  </os>',
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    '    <emulator>/usr/bin/qemu-system-x86_64</emulator>',
    ...nicXml,
    ...closingLines(qmpSocket),
  ];
  return lines.join('\n') + '\n';
}


function nicElement(nic: NonNullable<TinyGuestOptions['nic']>): string {
  if (typeof nic !== 'object' || nic === null) throw new InvalidArgumentError('tinyGuestXml: nic must be an object, e.g. {} or { model: \'e1000\', id: \'ua-nic0\' }');
  const { model = 'e1000', id } = nic;
  if (typeof model !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(model)) {
    throw new InvalidArgumentError(`tinyGuestXml: nic.model must be a NIC model name, got ${JSON.stringify(model)}`, { hint: "e.g. 'e1000', 'rtl8139' or 'virtio'" });
  }
  if (id !== undefined && (typeof id !== 'string' || !/^ua-[A-Za-z0-9_-]{1,40}$/.test(id))) {
    throw new InvalidArgumentError(`tinyGuestXml: nic.id must be 'ua-' followed by 1-40 of [A-Za-z0-9_-], got ${JSON.stringify(id)}`, {
      hint: "libvirt only accepts user-chosen aliases that start with 'ua-', e.g. 'ua-nic0'; omit id to get libvirt's own (net0)",
    });
  }
  return `    <interface type='user'><model type='${model}'/><rom enabled='no'/>${id ? `<alias name='${id}'/>` : ''}</interface>`;
}
