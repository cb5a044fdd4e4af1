/**
 * A Hypervisor through a libvirtd restart: Guest objects, QMP clients on both routes and guest.events()
 * keep working; a call in flight rejects typed; close() returns promptly. And a program whose libvirtd
 * is killed for good sees typed failures and exits by itself. Real private libvirtd, TCG guests.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../src/hybrid/index.js';
import { Connection, LibvirtConnectionLostError, type ConnectionGap } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { runScript } from '../harness/child.js';
import { nextMatching, settlesBefore } from '../harness/wait.js';

let lv: PrivateLibvirtd;
beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'hrc', tcp: true });
});
afterAll(async () => {
  await lv?.stop();
});

for (const transport of ['unix', 'tcp'] as const) {
  describe(`a Hypervisor over ${transport} through daemon.restart()`, () => {
    it('keeps guests, QMP clients and event streams; a call in flight rejects typed; close() settles', async () => {
      const uri = transport === 'tcp' ? lv.tcpUri! : lv.uri;
      const hv = await Hypervisor.connect(uri, { monitorDir: lv.qmpDir, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
      const withMonitor = transport === 'unix';
      const guest = await hv.createGuest(tinyGuestXml({ name: `hrc-${transport}` }), withMonitor ? { qmpSocket: true } : {});
      const notices: string[] = [];
      hv.on('disconnected', () => notices.push('disconnected'));
      const reconnected = new Promise<ConnectionGap>((resolve) => hv.once('reconnected', resolve));
      const mon = withMonitor ? await guest.qmp({ via: 'monitor' }) : undefined;
      const pt = await guest.qmp({ via: 'passthrough' });
      const events = guest.events({ via: 'passthrough' });
      await events.ready;

      let stop = false;
      const monResults: unknown[] = [];
      const ptResults: unknown[] = [];
      const inFlight: unknown[] = [];
      const monLoop = (async () => {
        while (mon && !stop) monResults.push(await mon.execute('query-status').then((r) => r.status, (err: unknown) => err));
      })();
      const ptLoop = (async () => {
        while (!stop) ptResults.push(await pt.execute('query-status').then((r) => r.status, (err: unknown) => err));
      })();
      const stateLoop = (async () => {
        while (!stop) inFlight.push(await guest.state().then((s) => s.state, (err: unknown) => err));
      })();
      await lv.restart();
      const gap = await settlesBefore(reconnected, 30_000, 'reconnection').catch((err: unknown) => {
        const c = hv.connection as unknown as { isReconnecting: boolean; lost?: Error };
        throw new Error(`${String(err)}; notices ${notices.join()}; reconnecting ${c.isReconnecting}; lost ${c.lost?.message}; pt ${ptResults.length} st ${inFlight.length}`);
      });
      // a few more rounds on every route after the daemon is back
      const after = ptResults.length;
      while (ptResults.length < after + 3) await new Promise((r) => setTimeout(r, 50));
      stop = true;
      await Promise.all([monLoop, ptLoop, stateLoop]);

      expect(notices).toEqual(['disconnected']);
      // (a) the monitor route does not notice libvirtd at all
      if (withMonitor) {
        expect(monResults.length).toBeGreaterThan(0);
        expect(monResults.every((r) => r === 'running')).toBe(true);
      }
      // (b) the passthrough client resumes: whatever failed failed typed, and it ends with answers
      for (const r of ptResults) if (r !== 'running') expect(r).toBeInstanceOf(Error);
      expect(ptResults.slice(-3)).toEqual(['running', 'running', 'running']);
      // (d) libvirt calls in flight at the loss reject typed, the rest succeed
      for (const r of inFlight) if (r !== 'running') expect(r).toBeInstanceOf(LibvirtConnectionLostError);
      expect(inFlight.at(-1)).toBe('running');
      // (c) the stream yields the gap notice, then events of what happens after the restart
      await guest.suspend();
      await guest.resume();
      const it = events[Symbol.asyncIterator]();
      const notice = await nextMatching(it, (e) => e.source === 'libqemu', { timeoutMs: 30_000 });
      expect(notice).toMatchObject({ kind: 'libvirt-gap', since: gap.since, until: gap.until });
      expect(await nextMatching(it, (e) => e.kind === 'lifecycle', { timeoutMs: 30_000 })).toMatchObject({ event: 'suspended' });
      expect(await nextMatching(it, (e) => e.kind === 'lifecycle', { timeoutMs: 30_000 })).toMatchObject({ event: 'resumed' });
      await events.return();
      // the Guest object from before the restart still drives the guest
      expect(await guest.state()).toMatchObject({ state: 'running' });
      await guest.destroy();
      await settlesBefore(hv.close(), 5_000, 'hv.close() after a reconnection');
    });
  });
}

describe('libvirtd killed and not restarted', () => {
  it('a script sees its call and its stream fail typed, and exits by itself', async () => {
    const conn = await Connection.open(lv.uri);
    await conn.createXML(tinyGuestXml({ name: 'hrc-gone' }));
    await conn.close();
    const script = fileURLToPath(new URL('./fixtures/reconnect-child.ts', import.meta.url));
    try {
      const r = await runScript(script, [lv.uri, 'hrc-gone'], (line) => {
        if (line.ready) void lv.kill();
      }, 60_000);
      expect(r.stderr).toBe('');
      expect(r.lines).toContainEqual({ call: 'LibvirtConnectionLostError' });
      expect(r.lines).toContainEqual({ stream: 'LibvirtConnectionLostError' });
      expect(r.lines).toContainEqual({ mark: 'closed' });
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    } finally {
      await lv.restart();
      const c = await Connection.open(lv.uri);
      await c.lookupDomain('hrc-gone').then((d) => d.destroy().catch(() => undefined), () => undefined);
      await c.close();
    }
  });
});
