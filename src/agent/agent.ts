/**
 * A typed, promise-based client of the QEMU guest agent (qemu-ga) over any AgentTransport: one method
 * per agent command people use, typed errors, a readiness wait, and an untyped `command()` for the rest.
 */
import { InvalidArgumentError } from '../common/errors.js';
import { redact } from '../qmp/redact.js';
import { AgentProtocolError, AgentTimeoutError, AgentUnavailableError } from './errors.js';
import { runExec, type ExecOptions, type ExecResult } from './exec.js';
import { readGuestFile, writeGuestFile, type ReadFileOptions, type WriteFileOptions } from './files.js';
import type {
  GuestAgentInfo,
  GuestFilesystemInfo,
  GuestFsfreezeStatus,
  GuestHostName,
  GuestNetworkInterface,
  GuestOsInfo,
  GuestShutdownMode,
  GuestTimezone,
} from './protocol.js';
import type { AgentRequest, AgentTransport } from './transport.js';

/** One exchange with the agent, for logging. Secrets are already redacted and file/exec payloads summarised. */
export interface AgentTrafficEntry {
  direction: 'send' | 'reply' | 'error';
  command: string;
  arguments?: Record<string, unknown>;
  reply?: unknown;
  error?: Error;
  /** For 'reply' and 'error': time since 'send'. */
  durationMs?: number;
}

export interface GuestAgentOptions {
  /** Default per-command timeout (ms; default 10 000). */
  timeoutMs?: number;
  /** Called for every command and its outcome, with secrets redacted (never the password itself). */
  onTraffic?: (entry: AgentTrafficEntry) => void;
}

export interface AgentCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WaitReadyOptions {
  /** How long to wait for the agent to answer guest-ping (default 60 000 ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Payload members shown as their size in traffic logs (large, and possibly sensitive file contents). */
const PAYLOAD_KEYS = new Set(['buf-b64', 'input-data', 'out-data', 'err-data']);

function summarise(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => summarise(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = PAYLOAD_KEYS.has(k) && typeof v === 'string' ? `<${Math.floor((v.length * 3) / 4)} bytes>` : summarise(v, depth + 1);
  return out;
}

function checkCallOptions(where: string, options: AgentCallOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`${where}: options must be an object`);
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 1)) {
    throw new InvalidArgumentError(`${where}: timeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError(`${where}: signal must be an AbortSignal`);
}

function expectType<T>(command: string, value: unknown, check: (v: unknown) => boolean, what: string): T {
  if (!check(value)) throw new AgentProtocolError({ command, detail: `expected ${what}, got ${JSON.stringify(value)?.slice(0, 200)}` });
  return value as T;
}

const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): boolean => Number.isSafeInteger(v);

export class GuestAgent {
  private readonly timeoutMs: number;
  private readonly onTraffic: ((entry: AgentTrafficEntry) => void) | undefined;
  private infoCache: GuestAgentInfo | undefined;

  constructor(
    readonly transport: AgentTransport,
    options: GuestAgentOptions = {},
  ) {
    if (typeof transport !== 'object' || transport === null || typeof transport.send !== 'function') {
      throw new InvalidArgumentError('GuestAgent needs an AgentTransport (an object with send())', { hint: 'use guest.agent() for the libvirt channel' });
    }
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('GuestAgent: options must be an object');
    checkCallOptions('GuestAgent', { ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
    if (options.onTraffic !== undefined && typeof options.onTraffic !== 'function') throw new InvalidArgumentError('GuestAgent: onTraffic must be a function');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.onTraffic = options.onTraffic;
  }

  /**
   * Any agent command, untyped: resolves with its `return` value. For commands GuestAgent wraps, prefer
   * the typed method. Secrets in `args` are redacted from traffic logs.
   */
  async command(name: string, args?: Record<string, unknown>, options?: AgentCallOptions & { noReply?: boolean }): Promise<unknown> {
    if (typeof name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new InvalidArgumentError(`agent command name must be like 'guest-ping', got ${JSON.stringify(name)}`);
    }
    if (args !== undefined && !isObject(args)) throw new InvalidArgumentError(`arguments of '${name}' must be an object, got ${JSON.stringify(args)}`);
    checkCallOptions(name, options);
    options?.signal?.throwIfAborted();
    const request: AgentRequest = args === undefined ? { execute: name } : { execute: name, arguments: args };
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const started = performance.now();
    this.trace(() => ({ direction: 'send', command: name, ...(args ? { arguments: summarise(redact(args)) as Record<string, unknown> } : {}) }));
    try {
      const reply = await this.transport.send(request, {
        timeoutMs,
        ...(options?.signal ? { signal: options.signal } : {}),
        ...(options?.noReply ? { noReply: true } : {}),
      });
      this.trace(() => ({ direction: 'reply', command: name, reply: summarise(redact(reply)), durationMs: performance.now() - started }));
      return reply;
    } catch (err) {
      this.trace(() => ({ direction: 'error', command: name, error: err as Error, durationMs: performance.now() - started }));
      throw err;
    }
  }

  // ---- readiness ----------------------------------------------------------------------------

  /** guest-ping: resolves when the agent answered. */
  async ping(options?: AgentCallOptions): Promise<void> {
    await this.command('guest-ping', undefined, options);
  }

  /**
   * Waits until the agent answers guest-ping: while it is not connected yet (the guest is booting,
   * qemu-ga starting, the guest rebooting) it asks again every 100 ms. Fails with AgentTimeoutError
   * after `timeoutMs`, at once for anything but unavailability (e.g. no agent channel configured).
   */
  async waitReady(options: WaitReadyOptions = {}): Promise<void> {
    checkCallOptions('waitReady', options);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = performance.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      options.signal?.throwIfAborted();
      const left = deadline - performance.now();
      if (left <= 0) throw new AgentTimeoutError({ command: 'guest-ping', timeoutMs, detail: `the agent did not become ready within ${timeoutMs} ms (last: ${(last as Error | undefined)?.message ?? 'no answer'})`, cause: last });
      try {
        await this.ping({ timeoutMs: Math.max(1000, Math.min(left, 5000)), ...(options.signal ? { signal: options.signal } : {}) });
        return;
      } catch (err) {
        if (!(err instanceof AgentUnavailableError) || err.reason === 'not-configured') throw err;
        last = err;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(100, Math.max(0, deadline - performance.now())));
        function done() {
          options.signal?.removeEventListener('abort', done);
          clearTimeout(t);
          resolve();
        }
        options.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  // ---- information --------------------------------------------------------------------------

  /** guest-info: the agent's version and its commands (remembered for supports()). */
  async info(options?: AgentCallOptions): Promise<GuestAgentInfo> {
    const info = expectType<GuestAgentInfo>('guest-info', await this.command('guest-info', undefined, options), (v) => isObject(v) && Array.isArray((v as GuestAgentInfo).supported_commands), 'a GuestAgentInfo');
    this.infoCache = info;
    return info;
  }

  /** Whether the agent offers `command` and has it enabled (asks guest-info once, then remembers). */
  async supports(command: string, options?: AgentCallOptions): Promise<boolean> {
    if (typeof command !== 'string' || command === '') throw new InvalidArgumentError(`supports: expected a command name, got ${JSON.stringify(command)}`);
    const info = this.infoCache ?? (await this.info(options));
    return info.supported_commands.some((c) => c.name === command && c.enabled);
  }

  async getOsInfo(options?: AgentCallOptions): Promise<GuestOsInfo> {
    return expectType<GuestOsInfo>('guest-get-osinfo', await this.command('guest-get-osinfo', undefined, options), isObject, 'a GuestOSInfo');
  }

  async getHostName(options?: AgentCallOptions): Promise<string> {
    const r = expectType<GuestHostName>('guest-get-host-name', await this.command('guest-get-host-name', undefined, options), (v) => isObject(v) && typeof (v as GuestHostName)['host-name'] === 'string', 'a GuestHostName');
    return r['host-name'];
  }

  async getTimezone(options?: AgentCallOptions): Promise<GuestTimezone> {
    return expectType<GuestTimezone>('guest-get-timezone', await this.command('guest-get-timezone', undefined, options), isObject, 'a GuestTimezone');
  }

  /** The guest's clock, in nanoseconds since the Epoch (a bigint: it exceeds 2^53). */
  async getTime(options?: AgentCallOptions): Promise<bigint> {
    const r = await this.command('guest-get-time', undefined, options);
    if (typeof r !== 'number' && typeof r !== 'bigint') throw new AgentProtocolError({ command: 'guest-get-time', detail: `expected an integer, got ${JSON.stringify(r)}` });
    // JSON numbers are doubles: nanoseconds since 1970 arrive rounded to ~256 ns already.
    return BigInt(Math.round(Number(r)));
  }

  /**
   * Sets the guest's clock (then its RTC). `time`: a Date, or nanoseconds since the Epoch; omitted = set
   * the system clock from the RTC.
   */
  async setTime(time?: Date | bigint, options?: AgentCallOptions): Promise<void> {
    let ns: bigint | undefined;
    if (time instanceof Date) {
      if (Number.isNaN(time.getTime())) throw new InvalidArgumentError('setTime: the Date is invalid');
      ns = BigInt(time.getTime()) * 1_000_000n;
    } else if (typeof time === 'bigint') {
      if (time < 0n) throw new InvalidArgumentError('setTime: nanoseconds must be ≥ 0');
      ns = time;
    } else if (time !== undefined) {
      throw new InvalidArgumentError(`setTime expects a Date or nanoseconds as a bigint, got ${JSON.stringify(time)}`, { hint: 'e.g. agent.setTime(new Date())' });
    }
    // JSON has no bigint; nanoseconds since 1970 fit a double to within ~256 ns, plenty for a guest clock.
    await this.command('guest-set-time', ns === undefined ? undefined : { time: Number(ns) }, options);
  }

  async getNetworkInterfaces(options?: AgentCallOptions): Promise<GuestNetworkInterface[]> {
    return expectType<GuestNetworkInterface[]>('guest-network-get-interfaces', await this.command('guest-network-get-interfaces', undefined, options), Array.isArray, 'a list of interfaces');
  }

  async getFsInfo(options?: AgentCallOptions): Promise<GuestFilesystemInfo[]> {
    return expectType<GuestFilesystemInfo[]>('guest-get-fsinfo', await this.command('guest-get-fsinfo', undefined, options), Array.isArray, 'a list of file systems');
  }

  // ---- file system freeze -------------------------------------------------------------------

  /**
   * Syncs and freezes the guest's local file systems (or only `mountpoints`); resolves with how many
   * are frozen. Thaw them with fsThaw() soon: writes in the guest block meanwhile.
   */
  async fsFreeze(options?: AgentCallOptions & { mountpoints?: string[] }): Promise<number> {
    const mp = options?.mountpoints;
    if (mp !== undefined && !(Array.isArray(mp) && mp.every((m) => typeof m === 'string' && m.startsWith('/')))) {
      throw new InvalidArgumentError(`fsFreeze: mountpoints must be a list of absolute paths, got ${JSON.stringify(mp)}`);
    }
    const r = mp === undefined ? await this.command('guest-fsfreeze-freeze', undefined, options) : await this.command('guest-fsfreeze-freeze-list', { mountpoints: mp }, options);
    return expectType<number>('guest-fsfreeze-freeze', r, isInt, 'a count');
  }

  /** Thaws frozen file systems; resolves with how many were thawed. */
  async fsThaw(options?: AgentCallOptions): Promise<number> {
    return expectType<number>('guest-fsfreeze-thaw', await this.command('guest-fsfreeze-thaw', undefined, options), isInt, 'a count');
  }

  async fsFreezeStatus(options?: AgentCallOptions): Promise<GuestFsfreezeStatus> {
    return expectType<GuestFsfreezeStatus>('guest-fsfreeze-status', await this.command('guest-fsfreeze-status', undefined, options), (v) => v === 'thawed' || v === 'frozen', "'thawed' or 'frozen'");
  }

  // ---- processes and files ------------------------------------------------------------------

  /**
   * Runs a program in the guest and waits for it (guest-exec, then guest-exec-status until it exited):
   * its exit code and its output, decoded. `timeoutMs` bounds the whole run (default 30 000 ms); on
   * expiry AgentTimeoutError (the process keeps running in the guest: the agent cannot kill it).
   */
  async exec(path: string, args: string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    checkCallOptions('exec', options);
    return runExec(this, path, args, options);
  }

  /** The whole content of a guest file (guest-file-open/read/close). */
  async readFile(path: string, options: ReadFileOptions = {}): Promise<Buffer> {
    checkCallOptions('readFile', options);
    return readGuestFile(this, path, options);
  }

  /** Writes (or with `append`, appends) `data` to a guest file (guest-file-open/write/close). */
  async writeFile(path: string, data: string | Uint8Array, options: WriteFileOptions = {}): Promise<void> {
    checkCallOptions('writeFile', options);
    return writeGuestFile(this, path, data, options);
  }

  // ---- power and accounts -------------------------------------------------------------------

  /**
   * Asks the agent to power the guest off, halt it or reboot it (guest-shutdown). Resolves once the
   * agent has the request; the agent never answers it. To wait until the guest is off, use
   * guest.shutdown({ mode: 'agent', wait: true }) or watch lifecycle events.
   */
  async shutdown(options: AgentCallOptions & { mode?: GuestShutdownMode } = {}): Promise<void> {
    const mode = options.mode ?? 'powerdown';
    if (mode !== 'powerdown' && mode !== 'halt' && mode !== 'reboot') {
      throw new InvalidArgumentError(`shutdown: mode must be 'powerdown', 'halt' or 'reboot', got ${JSON.stringify(mode)}`);
    }
    await this.command('guest-shutdown', { mode }, { ...options, noReply: true });
  }

  /**
   * Sets a guest user's password (guest-set-user-password). `crypted`: `password` is already a crypt(3)
   * hash. The password is sent base64-encoded, as the protocol wants, and never appears in traffic logs
   * or errors.
   */
  async setUserPassword(username: string, password: string, options: AgentCallOptions & { crypted?: boolean } = {}): Promise<void> {
    if (typeof username !== 'string' || !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(username)) {
      throw new InvalidArgumentError(`setUserPassword: username must be a plain account name, got ${JSON.stringify(username)}`);
    }
    if (typeof password !== 'string' || password === '' || /[\n\r]/.test(password)) {
      throw new InvalidArgumentError('setUserPassword: the password must be a non-empty string without line breaks', { hint: 'the value itself is not shown here' });
    }
    await this.command('guest-set-user-password', { username, password: Buffer.from(password, 'utf8').toString('base64'), crypted: options.crypted === true }, options);
  }

  /** Builds the log entry only when someone listens; a throwing listener never breaks the call. */
  private trace(entry: () => AgentTrafficEntry): void {
    if (!this.onTraffic) return;
    try {
      this.onTraffic(entry());
    } catch {
      // a logger's failure is not the agent's
    }
  }
}
