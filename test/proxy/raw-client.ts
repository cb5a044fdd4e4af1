/**
 * A deliberately dumb QMP client for proxy tests: raw lines on a unix socket, every message kept, no
 * id handling of its own, so tests see exactly what the proxy sends.
 */
import { connect, type Socket } from 'node:net';

export type Msg = Record<string, unknown>;

export class RawQmp {
  readonly messages: Msg[] = [];
  private buf = '';
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Msg;
        this.messages.push(msg);
        for (const w of [...this.waiters]) {
          if (w.pred(msg)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(msg);
          }
        }
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async connect(path: string, options: { negotiate?: boolean } = {}): Promise<RawQmp> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new RawQmp(socket);
    await c.next((m) => 'QMP' in m);
    if (options.negotiate !== false) {
      c.send({ execute: 'qmp_capabilities', id: 'neg' });
      await c.next((m) => m.id === 'neg');
    }
    return c;
  }

  send(msg: Msg | string): void {
    this.socket.write(typeof msg === 'string' ? msg : `${JSON.stringify(msg)}\n`);
  }

  /** The first message (already received or future) matching pred. */
  next(pred: (m: Msg) => boolean, timeoutMs = 5000): Promise<Msg> {
    const have = this.messages.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages).slice(-500)}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** Sends a command and waits for the reply with that id. */
  async call(execute: string, id: unknown, args?: Msg): Promise<Msg> {
    this.send(args ? { execute, arguments: args, id } : { execute, id });
    return this.next((m) => ('return' in m || 'error' in m) && JSON.stringify(m.id) === JSON.stringify(id));
  }

  events(name?: string): Msg[] {
    return this.messages.filter((m) => typeof m.event === 'string' && (name === undefined || m.event === name));
  }

  close(): void {
    this.socket.destroy();
  }
}
