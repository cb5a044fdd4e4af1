/**
 * Starts a bare QEMU (`-machine none`, no devices, no display) with a QMP unix socket in a private
 * 0700 temp dir, for tests and benchmarks that need a real QMP peer. ~0.1 s to start.
 *
 *   const qemu = await startQemu();
 *   const client = await QmpClient.connect({ path: qemu.qmpPath });
 *   …
 *   await qemu.stop();          // SIGKILL if needed, waits for exit, removes the temp dir
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartQemuOptions {
  /** Extra QEMU arguments, appended after the defaults. */
  args?: string[];
  /** Extra arguments that need the private dir (e.g. a second monitor socket in it). */
  argsFor?: (dir: string) => string[];
  /** How long to wait for the QMP socket (default 10 s). */
  timeoutMs?: number;
  /** Binary (default qemu-system-x86_64 from PATH). */
  binary?: string;
}

export interface QemuInstance {
  /** The QMP unix socket (0600 inside a 0700 dir). */
  readonly qmpPath: string;
  /** The private temp dir holding the socket. */
  readonly dir: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when QEMU has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything QEMU wrote to stderr so far. */
  stderr(): string;
  /** Sends a signal (default SIGKILL) and waits for exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Kills QEMU if still running and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export async function startQemu(options: StartQemuOptions = {}): Promise<QemuInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'libqemu-qemu-'));
  chmodSync(dir, 0o700);
  const qmpPath = join(dir, 'qmp.sock');
  const binary = options.binary ?? 'qemu-system-x86_64';
  const args = ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${qmpPath},server=on,wait=off`, ...(options.args ?? []), ...(options.argsFor?.(dir) ?? [])];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let hasExited = false;
  // If our process dies first (uncaught error, process.exit, EPIPE), QEMU must not outlive it.
  const killOnExit = () => {
    if (!hasExited) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      hasExited = true;
      stderr += String(err);
      resolve({ code: null, signal: null });
    });
  });

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (!hasExited) child.kill(signal);
    await exited;
  };
  const stop = async () => {
    await kill('SIGKILL');
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  // The socket file appears at bind(), before listen(): wait until the kernel lists it as listening,
  // without connecting (a probe would take QEMU's single monitor connection). Every unix server socket
  // in the arguments (e.g. a second monitor from argsFor) is waited for, not only the first: QEMU
  // creates them one after the other.
  const sockets = serverSocketPaths(args);
  while (!sockets.every(isListening)) {
    if (hasExited || Date.now() > deadline) {
      await stop();
      throw new Error(`QEMU did not create its QMP socket (${hasExited ? 'it exited' : 'timeout'}): ${binary} ${args.join(' ')}\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  chmodSync(qmpPath, 0o600);
  return { qmpPath, dir, pid: child.pid!, child, exited, stderr: () => stderr, kill, stop };
}

/** Paths of the unix server sockets in QEMU arguments (`unix:PATH,server=on…`, as -qmp or -chardev). */
export function serverSocketPaths(args: string[]): string[] {
  const paths: string[] = [];
  for (const arg of args) {
    const [kind, ...opts] = arg.split(',');
    const isServer = opts.some((o) => o === 'server' || o === 'server=on');
    const path = kind!.startsWith('unix:') ? kind!.slice('unix:'.length) : kind === 'socket' ? opts.find((o) => o.startsWith('path='))?.slice('path='.length) : undefined;
    if (isServer && path) paths.push(path);
  }
  return paths;
}

/** Whether a unix socket at `path` is in the listening state (Linux: /proc/net/unix flag __SO_ACCEPTCON). */
export function isListening(path: string): boolean {
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return false;
  }
  for (const line of table.split('\n')) {
    if (!line.endsWith(` ${path}`)) continue;
    const flags = line.trim().split(/\s+/)[3];
    if (flags === '00010000') return true;
  }
  return false;
}
