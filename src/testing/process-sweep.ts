/**
 * Finds and kills every process that belongs to a private libvirtd's directory: the daemon's process
 * tree, and anything that names the directory in its command line, environment or working directory.
 * The second half matters: libvirt daemonizes the QEMU it runs to probe capabilities, so a daemon killed
 * mid-probe leaves that QEMU behind, reparented to init, with only its HOME and cwd pointing at `base`.
 * Every PID is checked again (same start time) right before it is signalled, so a reused PID is spared.
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

export interface SweepOptions {
  /** The daemon's top process (tini): it and all its descendants belong to `base`. */
  root?: number;
  /** Only processes of this uid count when found by name (the daemon's uid when we are root). */
  uid?: number;
}

interface ProcessEntry {
  pid: number;
  ppid: number;
  /** Field 22 of /proc/<pid>/stat: with the PID, identifies the process. */
  startTime: string;
}

function readEntry(pid: number): (ProcessEntry & { zombie: boolean }) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), startTime: fields[19] ?? '', zombie: fields[0] === 'Z' || fields[0] === 'X' };
  } catch {
    return undefined;
  }
}

function readProcFile(pid: number, name: 'cmdline' | 'environ'): string {
  try {
    return readFileSync(`/proc/${pid}/${name}`, 'latin1');
  } catch {
    return '';
  }
}

/** Does this NUL-separated text mention `base` as a whole path (not a longer name starting with it)? */
function mentions(text: string, base: string): boolean {
  for (let i = text.indexOf(base); i >= 0; i = text.indexOf(base, i + 1)) {
    const next = text[i + base.length];
    if (next === undefined || next === '/' || next === '\0') return true;
  }
  return false;
}

function namesBase(pid: number, base: string): boolean {
  if (mentions(readProcFile(pid, 'cmdline'), base) || mentions(readProcFile(pid, 'environ'), base)) return true;
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return cwd === base || cwd.startsWith(base + '/');
  } catch {
    return false;
  }
}

function ownerUid(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
}

/** Live processes that belong to `base` (never this process, nor its other children). */
export function findOwnedProcesses(base: string, options: SweepOptions = {}): ProcessEntry[] {
  const all = new Map<number, ProcessEntry & { zombie: boolean }>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const e = readEntry(pid);
    if (e) all.set(pid, e);
  }
  const ancestors = (pid: number): number[] => {
    const chain: number[] = [];
    for (let p = all.get(pid)?.ppid; p !== undefined && p > 1 && chain.length < 64; p = all.get(p)?.ppid) chain.push(p);
    return chain;
  };
  const owned: ProcessEntry[] = [];
  for (const e of all.values()) {
    if (e.zombie || e.pid === process.pid) continue;
    const chain = ancestors(e.pid);
    const inDaemonTree = options.root !== undefined && (e.pid === options.root || chain.includes(options.root));
    if (!inDaemonTree) {
      // Our own other children (a test's child process, the watchdog) may name `base` too: not ours to kill here.
      if (chain.includes(process.pid)) continue;
      if (options.uid !== undefined && ownerUid(e.pid) !== options.uid) continue;
      if (!namesBase(e.pid, base)) continue;
    }
    owned.push({ pid: e.pid, ppid: e.ppid, startTime: e.startTime });
  }
  return owned;
}

/** Signals each process that is still the one that was found. */
export function signalProcesses(list: readonly ProcessEntry[], signal: NodeJS.Signals): void {
  for (const p of list) {
    const now = readEntry(p.pid);
    if (!now || now.zombie || now.startTime !== p.startTime) continue;
    try {
      process.kill(p.pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** SIGKILLs everything that belongs to `base`, looking again until nothing is left or `timeoutMs` passed. Synchronous (exit hooks). */
export function sweepSync(base: string, options: SweepOptions, timeoutMs = 2000): ProcessEntry[] {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = findOwnedProcesses(base, options);
    if (left.length === 0 || Date.now() > deadline) return left;
    signalProcesses(left, 'SIGKILL');
    Atomics.wait(sleepCell, 0, 0, 20);
  }
}

/** SIGTERM, then SIGKILL after `termMs`, looking again until nothing is left or `killMs` more passed. */
export async function sweep(base: string, options: SweepOptions, termMs = 3000, killMs = 2000): Promise<ProcessEntry[]> {
  const sleep = (): Promise<void> => new Promise((r) => setTimeout(r, 20));
  const termDeadline = Date.now() + termMs;
  const termed = new Set<string>();
  let left = findOwnedProcesses(base, options);
  while (left.length > 0 && Date.now() < termDeadline) {
    // Newcomers (spawned while the daemon shut down) get their SIGTERM too, once.
    const fresh = left.filter((p) => !termed.has(`${p.pid}:${p.startTime}`));
    for (const p of fresh) termed.add(`${p.pid}:${p.startTime}`);
    signalProcesses(fresh, 'SIGTERM');
    await sleep();
    left = findOwnedProcesses(base, options);
  }
  const killDeadline = Date.now() + killMs;
  while (left.length > 0) {
    signalProcesses(left, 'SIGKILL');
    if (Date.now() > killDeadline) break;
    await sleep();
    left = findOwnedProcesses(base, options);
  }
  return left;
}
