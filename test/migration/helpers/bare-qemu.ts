/**
 * A bare QEMU (no libvirt) running a given kernel, with a minimal QMP session, for testing the guest
 * kernel itself. Migration tests proper go through libvirt and the library's QMP client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BareQemu {
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Reads one little-endian u32 of guest-physical memory through HMP `xp`. */
  readPhys32(address: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startBareQemu(opts: { kernel: string; append: string; memoryMiB?: number }): Promise<BareQemu> {
  const dir = await mkdtemp(join(tmpdir(), 'libqemu-bare-'));
  const sock = join(dir, 'qmp.sock');
  const child = spawn(
    'qemu-system-x86_64',
    ['-machine', 'pc', '-accel', 'tcg', '-m', String(opts.memoryMiB ?? 64), '-nodefaults', '-display', 'none',
      '-kernel', opts.kernel, '-append', opts.append, '-qmp', `unix:${sock},server=on,wait=off`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    await killAndWait(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const socket = await connectWithRetry(sock, child, () => stderr);
    const session = lineSession(socket);
    await session.next(); // greeting
    await session.execute('qmp_capabilities');
    return {
      execute: session.execute,
      async readPhys32(address) {
        const out = (await session.execute('human-monitor-command', { 'command-line': `xp /1wx 0x${address.toString(16)}` })) as string;
        const m = /:\s*0x([0-9a-f]+)/i.exec(out);
        if (!m) throw new Error(`unexpected xp output: ${out}`);
        return parseInt(m[1]!, 16);
      },
      async stop() {
        socket.destroy();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function lineSession(socket: Socket) {
  let buf = '';
  const lines: Record<string, unknown>[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 10_000;
    while (lines.length === 0) {
      if (Date.now() > deadline) throw new Error('QMP: no message within 10 s');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    return lines.shift()!;
  };
  let id = 0;
  const execute = async (command: string, args?: Record<string, unknown>): Promise<unknown> => {
    const myId = `t${++id}`;
    socket.write(JSON.stringify({ execute: command, arguments: args, id: myId }) + '\n');
    for (;;) {
      const msg = await next();
      if (msg.id !== myId) continue; // events
      if ('error' in msg) throw new Error(`${command}: ${JSON.stringify(msg.error)}`);
      return msg.return;
    }
  };
  return { next, execute };
}

async function connectWithRetry(path: string, child: ChildProcess, stderr: () => string): Promise<Socket> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`QEMU exited (${child.exitCode}): ${stderr()}`);
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = createConnection(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 30));
    }
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await exited;
}
