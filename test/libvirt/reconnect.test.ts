/** Recovery from a libvirtd restart at the Connection level: calls, domain handles and event streams. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, LibvirtConnectionLostError, type ConnectionGap, type DomainEvent } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';
import { nextMatching, settlesBefore } from '../harness/wait.js';

for (const transport of ['unix', 'tcp'] as const) {
  describe(`reconnection over ${transport}`, () => {
    let daemon: PrivateLibvirtd;
    let uri: string;
    beforeAll(async () => {
      daemon = await startPrivateLibvirtd({ prefix: `lvrc${transport[0]}`, tcp: transport === 'tcp' });
      uri = transport === 'tcp' ? daemon.tcpUri! : daemon.uri;
    });
    afterAll(async () => {
      await daemon?.stop();
    });

    it('keeps handles and streams across restart(): in-flight calls reject typed, later calls wait, the stream yields a gap', async () => {
      const conn = await Connection.open(uri, { reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
      const dom = await conn.createXML(tinyGuestXml({ name: `rc-${transport}` }));
      const stream = conn.domainEvents({ domain: dom, kinds: ['lifecycle'] });
      await stream.ready;
      const notices: string[] = [];
      conn.on('disconnected', () => notices.push('disconnected'));
      const reconnected = new Promise<ConnectionGap>((resolve) => conn.once('reconnected', resolve));
      // A stream of calls: those in flight when the daemon dies fail typed, the rest wait and succeed.
      let stop = false;
      const outcomes: unknown[] = [];
      const loop = (async () => {
        while (!stop) outcomes.push(await dom.state().then((s) => s.state, (err: unknown) => err));
      })();
      await daemon.restart();
      const gap = await settlesBefore(reconnected, 30_000, 'reconnection');
      stop = true;
      await loop;
      expect(notices).toEqual(['disconnected']);
      expect(gap.until.getTime()).toBeGreaterThanOrEqual(gap.since.getTime());
      for (const o of outcomes) {
        if (typeof o !== 'string') expect(o).toBeInstanceOf(LibvirtConnectionLostError);
      }
      expect(outcomes.at(-1)).toBe('running');
      // The handle from before the restart works (looked up again by UUID), and so does the stream.
      await dom.suspend();
      await dom.resume();
      const it = stream[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value).toEqual({ kind: 'gap', since: gap.since, until: gap.until });
      const ev = (await nextMatching(it, () => true, { timeoutMs: 30_000 })) as DomainEvent;
      expect(ev).toMatchObject({ kind: 'lifecycle', event: 'suspended', domain: { uuid: dom.uuid } });
      expect(await nextMatching(it, () => true, { timeoutMs: 30_000 })).toMatchObject({ kind: 'lifecycle', event: 'resumed' });
      await dom.destroy();
      await settlesBefore(conn.close(), 5_000, 'close() after a reconnection');
    });

    it('a call issued while the daemon is down waits for it; one that outlives its deadline rejects typed', async () => {
      const conn = await Connection.open(uri, { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
      try {
        const lost = new Promise((resolve) => conn.once('disconnected', resolve));
        await daemon.kill();
        await lost;
        await expect(conn.hostname({ timeoutMs: 300 })).rejects.toBeInstanceOf(LibvirtConnectionLostError);
        const waiting = conn.hostname({ timeoutMs: 60_000 });
        await daemon.restart();
        expect(typeof (await waiting)).toBe('string');
      } finally {
        await settlesBefore(conn.close(), 5_000, 'close()');
      }
    });

    it('gives up when the daemon stays away: calls reject typed, streams end typed, close() returns', async () => {
      const conn = await Connection.open(uri, { reconnect: { initialDelayMs: 50, maxDelayMs: 200, giveUpAfterMs: 1500 } });
      const dom = await conn.createXML(tinyGuestXml({ name: `gone-${transport}` }));
      const stream = conn.domainEvents({ domain: dom });
      await stream.ready;
      const failed = new Promise<unknown>((resolve) => conn.once('reconnect-failed', resolve));
      await daemon.kill();
      try {
        await expect(dom.state({ timeoutMs: 60_000 })).rejects.toBeInstanceOf(LibvirtConnectionLostError);
        expect(await failed).toBeInstanceOf(LibvirtConnectionLostError);
        await expect(stream.next()).rejects.toBeInstanceOf(LibvirtConnectionLostError);
        await expect(conn.hostname()).rejects.toBeInstanceOf(LibvirtConnectionLostError);
        expect(conn.isOpen).toBe(false);
        await settlesBefore(conn.close(), 5_000, 'close() after giving up');
      } finally {
        await daemon.restart();
        const c = await Connection.open(uri);
        // the guest may not outlive a killed daemon: clean up only what is left
        await c.lookupDomain(`gone-${transport}`).then((d) => d.destroy().catch(() => undefined), () => undefined);
        await c.close();
      }
    });
  });
}

it('refuses bad reconnect options with a typed error', async () => {
  await expect(Connection.open('test:///default', { reconnect: { maxDelayMs: -1 } })).rejects.toThrow(/maxDelayMs/);
});
