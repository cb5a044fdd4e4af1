/**
 * A byte-level QMP client for conformance tests: writes exactly the bytes it is given (split as given,
 * no newline added) and returns the reply lines as the server wrote them, normalised only where QEMU
 * and libqemu legitimately differ (whitespace inside a `return` payload).
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  kind: 'return' | 'error';
  /** The id exactly as the server wrote it; undefined when the reply has none. */
  id: string | undefined;
  return?: unknown;
  class?: string;
  desc?: string;
}

export class WireClient {
  private text = '';
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.text += d;
      let nl: number;
      while ((nl = this.text.indexOf('\n')) >= 0) {
        this.lines.push(this.text.slice(0, nl).replace(/\r$/, ''));
        this.text = this.text.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static async connect(path: string): Promise<{ client: WireClient; greeting: Record<string, unknown> }> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new WireClient(socket);
    const greeting = JSON.parse(await client.nextLine()) as Record<string, unknown>;
    return { client, greeting };
  }

  /** The next line not yet taken (waits up to timeoutMs). */
  async nextLine(timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error(`no line within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.lines.shift()!;
  }

  /** Writes each piece in its own write, letting the previous one leave first. */
  async write(pieces: (string | Buffer)[]): Promise<void> {
    for (const p of pieces) {
      await new Promise<void>((resolve, reject) => this.socket.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p, (err) => (err ? reject(err) : resolve())));
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Reply lines up to and including the one whose id is `"<marker>"`; events are left out. */
  async repliesUntil(marker: string, timeoutMs = 120_000): Promise<Reply[]> {
    const out: Reply[] = [];
    for (;;) {
      const line = await this.nextLine(timeoutMs);
      if (line.startsWith('{"event"') || line.includes('"event": ')) continue;
      const reply = parseReply(line);
      out.push(reply);
      if (reply.id === JSON.stringify(marker)) return out;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Splits a reply as QEMU writes it (`{"return": R, "id": I}` / `{"id": I, "error": {…}}`) keeping the id's text. */
export function parseReply(line: string): Reply {
  if (line.startsWith('{"return": ')) {
    // The first `, "id": ` ends the payload (the tests' payloads hold none; an id may hold one).
    const at = line.indexOf(', "id": ');
    if (at < 0) return { kind: 'return', id: undefined, return: JSON.parse(line.slice(11, -1)) };
    return { kind: 'return', id: line.slice(at + 8, -1), return: JSON.parse(line.slice(11, at)) };
  }
  const at = line.lastIndexOf('"error": {"class": ');
  if (at < 0) throw new Error(`not a QMP reply: ${line.slice(0, 200)}`);
  const id = line.startsWith('{"id": ') ? line.slice(7, at - 2) : undefined;
  const err = JSON.parse(line.slice(at + 9, -1)) as { class: string; desc: string };
  return { kind: 'error', id, class: err.class, desc: err.desc };
}
