import { connect, type Socket } from 'node:net';

export interface RawQmpClientOptions {
  /** Send ids as strings (`"id":"7"`, libqemu's bytes) instead of numbers (default false). */
  stringIds?: boolean;
  /** Negotiate `oob` (without it QEMU suspends reading after every command: nothing pipelines). */
  oob?: boolean;
  /** Give up when no greeting arrives in time (default 10 s). */
  greetingTimeoutMs?: number;
}

/**
 * The smallest honest QMP client, the benchmarks' baseline: newline split, JSON.parse of every
 * message, match by id. It does no timeout bookkeeping, validation or event routing.
 */
export class RawQmpClient {
  private buf = '';
  private next = 1;
  private readonly waiting = new Map<number | string, (line: string) => void>();
  private greeted: () => void = () => undefined;
  private readonly greeting = new Promise<void>((resolve) => (this.greeted = resolve));

  private constructor(
    private readonly sock: Socket,
    private readonly stringIds: boolean,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const msg = JSON.parse(line) as { id?: number | string; QMP?: unknown };
        if (msg.QMP) this.greeted();
        if (msg.id !== undefined) {
          const w = this.waiting.get(msg.id);
          this.waiting.delete(msg.id);
          w?.(line);
        }
      }
    });
    sock.on('error', () => undefined);
  }

  static async open(path: string, options: RawQmpClientOptions = {}): Promise<RawQmpClient> {
    const greetingTimeoutMs = options.greetingTimeoutMs ?? 10_000;
    const sock = connect(path);
    await new Promise((resolve, reject) => (sock.once('connect', resolve), sock.once('error', reject)));
    const c = new RawQmpClient(sock, options.stringIds ?? false);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), greetingTimeoutMs).unref());
    if ((await Promise.race([c.greeting, timer])) === 'timeout') {
      sock.destroy();
      throw new Error(`no greeting within ${greetingTimeoutMs} ms`);
    }
    await c.call('qmp_capabilities', options.oob ? { enable: ['oob'] } : undefined);
    return c;
  }

  /** Sends one command; resolves with the reply line. */
  call(command: string, args?: object): Promise<string> {
    const n = this.next++;
    const id = this.stringIds ? String(n) : n;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.sock.write(`{"execute":"${command}",${args ? `"arguments":${JSON.stringify(args)},` : ''}"id":${this.stringIds ? `"${n}"` : n}}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
