/**
 * The passthrough transport's error path without a daemon: libvirt's failures reach the caller as the
 * very LibvirtError object (code and codeName kept), never re-encoded as a QMP error reply. The
 * not-running case against a real libvirtd is in facade.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { GuestQmpClient } from '../../src/hybrid/guest-client.js';
import { GuestNotRunningError } from '../../src/hybrid/errors.js';
import { PassthroughTransport, type PassthroughTarget } from '../../src/hybrid/passthrough-transport.js';
import { OwnershipPolicy } from '../../src/hybrid/policy.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import { QmpCommandError } from '../../src/qmp/errors.js';

type Answer = (command: Record<string, unknown>) => Promise<{ return?: unknown; error?: { class: string; desc: string } }>;

/** A passthrough target whose replies come from `answer`, as libvirt's reply text (`{"return":…,"id":"libvirt-N"}`). */
function route(answer: Answer): PassthroughTransport {
  const events = {
    ready: Promise.resolve(),
    async next() {
      return new Promise<IteratorResult<never>>(() => {}); // no events; ended by return()
    },
    async return() {
      return { done: true as const, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  let n = 0;
  const target: PassthroughTarget = {
    uri: 'qemu:///session',
    name: 'stub',
    // not async: a synchronous throw from `answer` stays one
    qemuMonitorCommandText: (command) => answer(command).then((reply) => JSON.stringify({ ...reply, id: `libvirt-${++n}` })),
    qemuMonitorCommandWithFiles: () => Promise.reject(new Error('no fds here')),
    qemuMonitorEvents: () => events,
  };
  return new PassthroughTransport(target);
}

async function client(answer: Answer): Promise<GuestQmpClient> {
  const c = new GuestQmpClient(route(answer), { guest: 'stub', route: 'passthrough', policy: new OwnershipPolicy(), validate: false });
  await c.open();
  return c;
}

describe('PassthroughTransport errors', () => {
  it('a LibvirtError reaches the caller as the same object, code kept; the next command still runs', async () => {
    const libvirtError = new LibvirtError({ code: 38, domain: 10, message: 'an OS error from the daemon', operation: 'virDomainQemuMonitorCommand' });
    let calls = 0;
    const c = await client(async (cmd) => {
      if (cmd.execute === 'query-version') return { return: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' } };
      calls++;
      if (calls === 1) throw libvirtError;
      return { return: { status: 'running', running: true } };
    });
    try {
      const err = await c.execute('query-status').catch((e: unknown) => e);
      expect(err).toBe(libvirtError);
      expect((err as LibvirtError).codeName).toBe('VIR_ERR_SYSTEM_ERROR');
      expect(await c.execute('query-status')).toEqual({ status: 'running', running: true });
    } finally {
      await c.close();
    }
  });

  it("libvirt's 'not running' errors become GuestNotRunningError with the LibvirtError as cause; QEMU's own error replies stay QmpCommandError", async () => {
    const notRunning = new LibvirtError({ code: 55, domain: 10, message: 'domain is not running' });
    const c = await client(async (cmd) => {
      if (cmd.execute === 'query-version') return { return: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' } };
      if (cmd.execute === 'query-status') throw notRunning;
      return { error: { class: 'CommandNotFound', desc: 'The command x has not been found' } };
    });
    try {
      const err = await c.execute('query-status').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestNotRunningError);
      expect((err as GuestNotRunningError).guest).toBe('stub');
      expect((err as Error).cause).toBe(notRunning);
      await expect(c.executeUnchecked('x')).rejects.toMatchObject({ errorClass: 'CommandNotFound' });
      await expect(c.executeUnchecked('x')).rejects.toBeInstanceOf(QmpCommandError);
    } finally {
      await c.close();
    }
  });

  it("keeps one caller's commands in order, one at a time, and runs different ordering keys side by side", async () => {
    const started: string[] = [];
    const held = new Map<string, () => void>();
    const c = await client((cmd) => {
      if (cmd.execute === 'query-version') return Promise.resolve({ return: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' } });
      const tag = String((cmd.arguments as { tag: string }).tag);
      started.push(tag);
      return new Promise((resolve) => held.set(tag, () => resolve({ return: tag })));
    });
    const release = async (tag: string): Promise<void> => {
      await vi.waitFor(() => expect(held.has(tag)).toBe(true));
      held.get(tag)!();
      held.delete(tag);
    };
    try {
      const alice = {};
      const bob = {};
      const a1 = c.executeUnchecked('echo', { tag: 'a1' }, { orderingKey: alice });
      const a2 = c.executeUnchecked('echo', { tag: 'a2' }, { orderingKey: alice });
      const b1 = c.executeUnchecked('echo', { tag: 'b1' }, { orderingKey: bob });
      // a1 and b1 run at once (different callers); a2 waits for a1 (same caller)
      await vi.waitFor(() => expect(started).toEqual(['a1', 'b1']));
      await release('b1');
      expect(await b1).toBe('b1');
      expect(started).toEqual(['a1', 'b1']);
      await release('a1');
      expect(await a1).toBe('a1');
      await release('a2');
      expect(await a2).toBe('a2');
      expect(started).toEqual(['a1', 'b1', 'a2']);
      // without a key: one order for everyone, one command at a time
      const n1 = c.executeUnchecked('echo', { tag: 'n1' });
      const n2 = c.executeUnchecked('echo', { tag: 'n2' });
      await vi.waitFor(() => expect(started.at(-1)).toBe('n1'));
      expect(started.includes('n2')).toBe(false);
      await release('n1');
      await release('n2');
      expect([await n1, await n2]).toEqual(['n1', 'n2']);
    } finally {
      await c.close();
    }
  });

  it("a command refused before it reaches libvirt (a synchronous throw) fails alone; the caller's next command runs", async () => {
    const refused = new Error('refused before libvirt');
    let calls = 0;
    const c = await client((cmd) => {
      if (cmd.execute === 'query-version') return Promise.resolve({ return: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' } });
      if (++calls === 1) throw refused;
      return Promise.resolve({ return: { status: 'running', running: true } });
    });
    try {
      const key = {};
      const first = c.executeUnchecked('query-status', undefined, { orderingKey: key }).catch((e: unknown) => e);
      const second = c.executeUnchecked('query-status', undefined, { orderingKey: key });
      expect(await first).toBe(refused);
      expect(await second).toEqual({ status: 'running', running: true });
    } finally {
      await c.close();
    }
  });

  it('refuses an ordering key that is not an object', async () => {
    const c = await client(async () => ({ return: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' } }));
    try {
      await expect(c.executeUnchecked('query-status', undefined, { orderingKey: 'alice' as unknown as object })).rejects.toThrow(/orderingKey must be an object/);
    } finally {
      await c.close();
    }
  });
});
