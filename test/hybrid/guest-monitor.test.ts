/**
 * The guest's monitor upkeep (socket lookup cached per QEMU run, reconnection after a restart, the gap
 * notices) and taint reporting, against a fake libvirt domain whose "QEMU runs" are real bare QEMUs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestEvent, GuestEventStream } from '../../src/hybrid/guest-events.js';
import { GuestTaint } from '../../src/hybrid/taint.js';
import { FakeDomain, fakeGuest } from '../harness/fake-libvirt.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';
import { nextMatching } from '../harness/wait.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A fake domain whose every start() launches a fresh real QEMU (a new socket path per run, as a redefinition would give). */
function restartableGuest() {
  const domain = new FakeDomain();
  const runs: QemuInstance[] = [];
  domain.onStart = async () => {
    const q = await startQemu();
    cleanups.push(() => q.stop());
    runs.push(q);
    domain.monitorPath = q.qmpPath;
  };
  domain.onDestroy = async () => {
    await runs.at(-1)?.kill('SIGKILL');
  };
  const fake = fakeGuest(domain);
  cleanups.push(() => fake.guest.close());
  return { ...fake, runs };
}

function next(stream: GuestEventStream, matches: (e: GuestEvent) => boolean): Promise<GuestEvent> {
  return nextMatching(stream, matches, { what: 'a matching guest event' });
}

describe('the monitor socket lookup', () => {
  it('reads the domain XML once per QEMU run while lifecycle events are followed', async () => {
    const { guest, domain } = restartableGuest();
    await guest.start();
    const first = await guest.qmp({ validate: false }); // opens the shared connection and starts following
    const readsAfterOpen = domain.calls.get('xml')!;
    for (let i = 0; i < 3; i++) expect(await guest.monitorSocket()).toBe(domain.monitorPath);
    expect(await guest.qmpRoutes()).toEqual(['monitor', 'passthrough']);
    expect(domain.calls.get('xml')).toBe(readsAfterOpen);
    await first.close();
  });

  it('reads it again after a restart, and finds the new socket', async () => {
    const { guest, domain, runs } = restartableGuest();
    await guest.start();
    const qmp = await guest.qmp({ validate: false });
    await guest.monitorSocket();
    await guest.destroy();
    await guest.start();
    expect(runs).toHaveLength(2);
    expect(await guest.monitorSocket()).toBe(runs[1]!.qmpPath);
    await qmp.close();
  });

  it('reads it again after a restart by another tool (seen through libvirt lifecycle events only)', async () => {
    const { guest, domain, runs } = restartableGuest();
    await guest.start();
    await (await guest.qmp({ validate: false })).close(); // the shared connection closes, the watcher stays
    expect(await guest.monitorSocket()).toBe(runs[0]!.qmpPath);
    await domain.destroy(); // as `virsh destroy` + `virsh start` would: not through this Guest
    await domain.start();
    expect(await guest.monitorSocket()).toBe(runs[1]!.qmpPath);
  });

  it('is not cached while nobody follows the lifecycle (no monitor client yet)', async () => {
    const domain = new FakeDomain({ running: true, monitorPath: '/tmp/a.sock' });
    const { guest } = fakeGuest(domain);
    expect(await guest.monitorSocket()).toBe('/tmp/a.sock');
    domain.monitorPath = '/tmp/b.sock';
    expect(await guest.monitorSocket()).toBe('/tmp/b.sock');
  });
});

describe('reconnection', () => {
  it("a client stays usable across a QEMU restart, with 'qmp-disconnected' and 'qmp-reconnected' notices between", async () => {
    const { guest } = restartableGuest();
    await guest.start();
    const events = guest.events({ libvirt: false, qmp: false });
    await events.ready;
    const qmp = await guest.qmp({ validate: false });
    expect(await qmp.execute('query-status')).toMatchObject({ status: 'running' });

    await guest.destroy();
    expect(await next(events, (e) => e.source === 'libqemu')).toMatchObject({ kind: 'qmp-disconnected' });
    await guest.start(); // libvirt's 'started' event makes the monitor dial the new socket
    const back = await next(events, (e) => e.source === 'libqemu');
    expect(back).toMatchObject({ kind: 'qmp-reconnected' });
    expect((back as { gapMs: number }).gapMs).toBeGreaterThanOrEqual(0);
    expect(await qmp.execute('query-status')).toMatchObject({ status: 'running' });
    await events.return();
    await qmp.close();
  });

  it('close() ends the lifecycle watcher and the event streams: no libvirt subscription is left', async () => {
    const { guest, domain } = restartableGuest();
    await guest.start();
    await guest.qmp({ validate: false });
    const events = guest.events({ qmp: false });
    await events.ready;
    expect(domain.openSubscriptions).toBe(2); // the watcher and the stream's lifecycle events
    await guest.close();
    expect(await events.next()).toEqual({ done: true, value: undefined });
    expect(domain.openSubscriptions).toBe(0);
  });
});

describe('taint', () => {
  const mark = 'tainted: custom monitor control commands issued';

  it('GuestTaint reports each mark once, and looks once per route and QEMU run', async () => {
    let messages: string[] = [];
    let reads = 0;
    const reports: string[][] = [];
    const taint = new GuestTaint({ guest: 'g', messages: async () => (reads++, messages), report: (r) => reports.push(r.taints.map((t) => t.flag)) });
    await taint.checkRoute('passthrough');
    messages = [mark];
    await taint.checkRoute('passthrough'); // already looked on this route in this run
    expect(reads).toBe(1);
    await taint.checkRoute('monitor');
    expect(reports).toEqual([['custom-monitor']]);
    taint.newRun();
    await taint.checkRoute('monitor');
    expect(reads).toBe(3);
    expect(reports).toEqual([['custom-monitor']]); // the same mark is not reported twice
  });

  it('a failed read reports nothing and does not fail the caller', async () => {
    const reports: unknown[] = [];
    const taint = new GuestTaint({ guest: 'g', messages: () => Promise.reject(new Error('gone')), report: (r) => reports.push(r) });
    await taint.check();
    expect(reports).toEqual([]);
  });

  it('guest.qmp() hands a new mark to the hypervisor once and to event streams as a notice', async () => {
    const fake = restartableGuest();
    fake.domain.messageList = [mark];
    await fake.guest.start();
    const events = fake.guest.events({ libvirt: false, qmp: false });
    await events.ready;
    await (await fake.guest.qmp({ validate: false })).close();
    await (await fake.guest.qmp({ validate: false })).close();
    expect(fake.taintReports).toEqual([{ guest: fake.domain.name, taints: [{ flag: 'custom-monitor', message: mark }] }]);
    expect(await next(events, () => true)).toMatchObject({ source: 'libqemu', kind: 'taint', taints: [{ flag: 'custom-monitor' }] });
    await events.return();
  });
});
