/**
 * The passthrough transport's error path without a daemon: libvirt's failures reach the caller as the
 * very LibvirtError object (code and codeName kept), never re-encoded as a QMP error reply. The
 * not-running case against a real libvirtd is in facade.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { GuestQmpClient } from '../../src/hybrid/guest-client.js';
import { GuestNotRunningError } from '../../src/hybrid/errors.js';
import { PassthroughTransport } from '../../src/hybrid/passthrough-transport.js';
import { OwnershipPolicy } from '../../src/hybrid/policy.js';
import type { Connection } from '../../src/libvirt/connection.js';
import type { Domain } from '../../src/libvirt/domain.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import { QmpCommandError } from '../../src/qmp/errors.js';

/** Just enough of a Connection and a Domain for the transport: replies come from `answer`. */
function route(answer: (command: Record<string, unknown>) => Promise<{ return?: unknown; error?: { class: string; desc: string } }>) {
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
  const connection = { qemuMonitorEvents: () => events } as unknown as Connection;
  const domain = { name: 'stub', qemuMonitorCommand: answer } as unknown as Domain;
  return new PassthroughTransport(connection, domain);
}

async function client(answer: Parameters<typeof route>[0]): Promise<GuestQmpClient> {
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
});
