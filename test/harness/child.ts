/**
 * Runs a TypeScript file (through tsx) in its own Node process, for tests of how a program ends: it
 * prints one JSON line per milestone, the parent collects them with the exit code or signal.
 */
import { spawn } from 'node:child_process';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Record<string, unknown>[];
  stderr: string;
  /** ms from the child's last `mark` line to its exit as seen here. */
  exitAfterMarkMs: number | undefined;
}

/** Runs a TypeScript file in its own Node process (through tsx); `onLine` sees each JSON line it prints. */
export function runScript(
  script: string,
  args: string[],
  onLine?: (line: Record<string, unknown>) => void,
  timeoutMs = 90_000,
  env?: Record<string, string>,
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : undefined });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    let buf = '';
    let markAt: number | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${script} ${args[0] ?? ''} did not exit within ${timeoutMs} ms; output: ${JSON.stringify(lines)} ${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const obj = JSON.parse(line) as Record<string, unknown>;
          if ('mark' in obj) markAt = Date.now();
          lines.push(obj);
          onLine?.(obj);
        } catch {
          stderr += line + '\n';
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, lines, stderr, exitAfterMarkMs: markAt === undefined ? undefined : Date.now() - markAt });
    });
  });
}

