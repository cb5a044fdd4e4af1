/** guest-exec + guest-exec-status behind one awaitable call with decoded output. */
import { InvalidArgumentError } from '../common/errors.js';
import { AgentProtocolError, AgentTimeoutError } from './errors.js';
import type { GuestExecStatus } from './protocol.js';

export interface ExecOptions {
  /** Environment for the process, e.g. ['LANG=C'] (the agent's own otherwise). */
  env?: string[];
  /** Fed to the process's stdin. */
  input?: string | Uint8Array;
  /** Capture stdout/stderr (default true). */
  captureOutput?: boolean;
  /** Bounds the whole run, start to exit (default 30 000 ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  /** The guest pid the agent reported. */
  pid: number;
  /** The exit code; undefined when the process was killed by a signal. */
  exitCode: number | undefined;
  /** The signal that ended the process, if one did. */
  signal: number | undefined;
  /** stdout decoded as UTF-8 ('' when not captured). */
  stdout: string;
  stderr: string;
  /** The agent caps captured output (16 MiB in qemu-ga): true when it cut some off. */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** What exec needs of the agent client. */
export interface AgentCommander {
  command(name: string, args?: Record<string, unknown>, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function runExec(agent: AgentCommander, path: string, args: string[], options: ExecOptions): Promise<ExecResult> {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) throw new InvalidArgumentError(`exec: path must be a program name or path, got ${JSON.stringify(path)}`, { hint: "e.g. agent.exec('/bin/sh', ['-c', 'uptime'])" });
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new InvalidArgumentError(`exec: args must be a list of strings, got ${JSON.stringify(args)}`);
  if (options.env !== undefined && !(Array.isArray(options.env) && options.env.every((e) => typeof e === 'string' && e.includes('=')))) {
    throw new InvalidArgumentError(`exec: env must be a list of NAME=value strings, got ${JSON.stringify(options.env)}`);
  }
  const { input, signal } = options;
  if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array)) throw new InvalidArgumentError('exec: input must be a string or bytes');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = performance.now() + timeoutMs;
  const capture = options.captureOutput ?? true;
  const left = () => Math.max(1, Math.round(deadline - performance.now()));
  const call = (name: string, a: Record<string, unknown>) => agent.command(name, a, { timeoutMs: left(), ...(signal ? { signal } : {}) });

  const started = await call('guest-exec', {
    path,
    arg: args,
    ...(options.env ? { env: options.env } : {}),
    ...(input !== undefined ? { 'input-data': Buffer.from(input).toString('base64') } : {}),
    'capture-output': capture,
  });
  const pid = (started as { pid?: unknown } | null)?.pid;
  if (!Number.isSafeInteger(pid)) throw new AgentProtocolError({ command: 'guest-exec', detail: `expected { pid }, got ${JSON.stringify(started)}` });

  // Poll quickly first (most commands end within milliseconds), then back off.
  let interval = 10;
  for (;;) {
    signal?.throwIfAborted();
    const status = (await call('guest-exec-status', { pid })) as GuestExecStatus | null;
    if (typeof status !== 'object' || status === null || typeof status.exited !== 'boolean') {
      throw new AgentProtocolError({ command: 'guest-exec-status', detail: `expected a GuestExecStatus, got ${JSON.stringify(status)?.slice(0, 200)}` });
    }
    if (status.exited) {
      return {
        pid: pid as number,
        exitCode: status.exitcode,
        signal: status.signal,
        stdout: status['out-data'] ? Buffer.from(status['out-data'], 'base64').toString('utf8') : '',
        stderr: status['err-data'] ? Buffer.from(status['err-data'], 'base64').toString('utf8') : '',
        stdoutTruncated: status['out-truncated'] === true,
        stderrTruncated: status['err-truncated'] === true,
      };
    }
    if (performance.now() + interval > deadline) {
      throw new AgentTimeoutError({ command: 'guest-exec', timeoutMs, detail: `${path} (guest pid ${String(pid)}) did not exit within ${timeoutMs} ms; it keeps running in the guest` });
    }
    await sleep(interval, signal);
    interval = Math.min(interval * 2, 200);
  }
}
