/**
 * A long-lived python3-libvirt process driven round by round over stdin: `round(n)` runs `n` timed calls
 * and returns their times (ms). `script` is the Python program; it gets the URI, the domain name and
 * 'loop' or 'plain' (whether libvirt's event loop runs in a thread) as arguments, prints one JSON line
 * once connected and warmed up, then one JSON array of times per number it reads (`ask(line)`: a
 * script's own request line, answered by one JSON line).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface PythonBaseline {
  round(n: number): Promise<number[]>;
  /** Sends one request line (a script's own command) and returns the JSON line it answers with. */
  ask<T = unknown>(line: string): Promise<T>;
  stop(): void;
}

export async function startPythonBaseline(script: string, uri: string, name: string, loop: boolean): Promise<PythonBaseline> {
  const child = spawn('/usr/bin/python3', ['-c', script, uri, name, loop ? 'loop' : 'plain'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async <T = number[]>(): Promise<T> => {
    const r = await lines.next();
    if (r.done) throw new Error(`python3-libvirt baseline failed: ${stderr || 'exited'}`);
    return JSON.parse(r.value) as T;
  };
  await next(); // connected and warmed up
  return {
    async round(n) {
      child.stdin.write(`${n}\n`);
      return next();
    },
    async ask(line) {
      child.stdin.write(`${line}\n`);
      return next();
    },
    stop: () => child.kill(),
  };
}
