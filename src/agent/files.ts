/** Whole-file read and write through guest-file-open/read/write/close. */
import { InvalidArgumentError } from '../common/errors.js';
import { AgentProtocolError } from './errors.js';
import type { AgentCommander } from './exec.js';
import type { GuestFileRead, GuestFileWrite } from './protocol.js';

export interface ReadFileOptions {
  /** Refuse files larger than this (default 16 MiB): the content crosses the agent channel base64-encoded. */
  maxBytes?: number;
  /** Per agent command (default: the client's). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WriteFileOptions {
  /** Append instead of replacing the file. */
  append?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Bytes per guest-file-read: well under libvirt's RPC message limit once base64-encoded. */
const READ_CHUNK = 1024 * 1024;
/**
 * Bytes per guest-file-write: qemu-ga parses requests a character at a time, which on a TCG guest costs
 * seconds per MiB; small writes keep each command well inside its timeout.
 */
const WRITE_CHUNK = 64 * 1024;

function checkPath(where: string, path: unknown): asserts path is string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new InvalidArgumentError(`${where}: path must be an absolute guest path, got ${JSON.stringify(path)}`);
  }
}

async function withHandle<T>(agent: AgentCommander, path: string, mode: string, call: { timeoutMs?: number; signal?: AbortSignal }, body: (handle: number) => Promise<T>): Promise<T> {
  const handle = await agent.command('guest-file-open', { path, mode }, call);
  if (!Number.isSafeInteger(handle)) throw new AgentProtocolError({ command: 'guest-file-open', detail: `expected a handle, got ${JSON.stringify(handle)}` });
  try {
    return await body(handle as number);
  } finally {
    // Always release the handle in the agent, even when aborted: without the signal, with its own timeout.
    await agent.command('guest-file-close', { handle }, call.timeoutMs === undefined ? {} : { timeoutMs: call.timeoutMs }).catch(() => undefined);
  }
}

export async function readGuestFile(agent: AgentCommander, path: string, options: ReadFileOptions): Promise<Buffer> {
  checkPath('readFile', path);
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new InvalidArgumentError(`readFile: maxBytes must be a non-negative integer, got ${String(options.maxBytes)}`);
  const call = { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  return withHandle(agent, path, 'r', call, async (handle) => {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const r = (await agent.command('guest-file-read', { handle, count: Math.min(READ_CHUNK, maxBytes - total + 1) || 1 }, call)) as GuestFileRead | null;
      if (typeof r !== 'object' || r === null || typeof r['buf-b64'] !== 'string') throw new AgentProtocolError({ command: 'guest-file-read', detail: 'expected a GuestFileRead' });
      const chunk = Buffer.from(r['buf-b64'], 'base64');
      total += chunk.length;
      if (total > maxBytes) throw new InvalidArgumentError(`readFile: ${path} is larger than maxBytes (${maxBytes})`, { hint: 'raise maxBytes, or read it in parts with agent.command("guest-file-read")' });
      parts.push(chunk);
      if (r.eof || chunk.length === 0) return Buffer.concat(parts);
    }
  });
}

export async function writeGuestFile(agent: AgentCommander, path: string, data: string | Uint8Array, options: WriteFileOptions): Promise<void> {
  checkPath('writeFile', path);
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new InvalidArgumentError('writeFile: data must be a string or bytes');
  const bytes = Buffer.from(data);
  const call = { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  await withHandle(agent, path, options.append ? 'a' : 'w', call, async (handle) => {
    for (let off = 0; off < bytes.length || off === 0; off += WRITE_CHUNK) {
      const slice = bytes.subarray(off, off + WRITE_CHUNK);
      if (slice.length === 0) break; // an empty file: opening with 'w' already truncated it
      const r = (await agent.command('guest-file-write', { handle, 'buf-b64': slice.toString('base64') }, call)) as GuestFileWrite | null;
      if (typeof r !== 'object' || r === null || r.count !== slice.length) {
        throw new AgentProtocolError({ command: 'guest-file-write', detail: `wrote ${JSON.stringify(r?.count)} of ${slice.length} bytes` });
      }
    }
    await agent.command('guest-file-flush', { handle }, call);
  });
}
