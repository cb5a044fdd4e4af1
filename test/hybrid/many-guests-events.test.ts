/**
 * Twenty guests on one Hypervisor: a stop/cont on every guest is seen exactly once per guest, as QMP
 * STOP/RESUME on both routes (with and without event-name filters) and as libvirt lifecycle events.
 * libvirt 9.0 forwards only the first unfiltered per-domain QEMU-event registration of a connection, so
 * this failed for every guest but the first on the passthrough route before libqemu shared one
 * connection-wide registration among them. The same again after a libvirtd restart: every stream
 * gets one gap notice first, then every guest's events, once each (the shared registration is made
 * again on the new connection).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, type Guest, type GuestEvent, type GuestEventStream } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { waitFor } from '../harness/wait.js';

const GUESTS = 20;
let daemon: PrivateLibvirtd;
let hv: Hypervisor;
let guests: Guest[];

beforeAll(async () => {
  daemon = await startPrivateLibvirtd({ prefix: 'lvmany' });
  hv = await Hypervisor.connect(daemon.uri);
  // half with a second monitor (route 'monitor'), half without (passthrough only)
  guests = await Promise.all(
    Array.from({ length: GUESTS }, (_, i) => hv.createGuest(tinyGuestXml({ name: `many${i}`, memoryMiB: 32 }), i % 2 === 0 ? { qmpSocket: true } : {})),
  );
}, 180_000);

afterAll(async () => {
  await hv?.close();
  await daemon?.stop();
});

/** Collects every event of each stream into per-guest lists. */
function collect(streams: GuestEventStream[]): GuestEvent[][] {
  const seen: GuestEvent[][] = streams.map(() => []);
  streams.forEach((s, i) => {
    void (async () => {
      for await (const ev of s) seen[i]!.push(ev);
    })();
  });
  return seen;
}

const gaps = (evs: GuestEvent[]) => evs.filter((e) => e.kind === 'libvirt-gap');
const qmpNames = (evs: GuestEvent[]) => evs.filter((e) => e.kind === 'qmp').map((e) => (e.kind === 'qmp' ? e.event : ''));
const lifecycle = (evs: GuestEvent[]) => evs.filter((e) => e.kind === 'lifecycle').map((e) => (e.kind === 'lifecycle' ? e.event : ''));

/** Restarts libvirtd and waits until the Hypervisor has reconnected. */
async function restartDaemon(): Promise<void> {
  let reconnected = false;
  const onReconnected = () => (reconnected = true);
  hv.on('reconnected', onReconnected);
  try {
    await daemon.restart();
    await waitFor('the Hypervisor to reconnect after the libvirtd restart', () => reconnected, { timeoutMs: 30_000 });
  } finally {
    hv.off('reconnected', onReconnected);
  }
}

const variants = [
  { label: 'passthrough, every QMP event', via: 'passthrough' as const, qmp: true as const },
  { label: 'passthrough, filtered by name', via: 'passthrough' as const, qmp: ['STOP', 'RESUME'] as ('STOP' | 'RESUME')[] },
  { label: 'auto (monitor where there is one), every QMP event', via: 'auto' as const, qmp: true as const },
];

describe.each([
  ...variants.map((v) => ({ ...v, restart: false })),
  ...variants.map((v) => ({ ...v, label: `${v.label}, streams opened before a libvirtd restart`, restart: true })),
])('$label', ({ via, qmp, restart }) => {
  it('sees STOP and RESUME once per guest, and libvirt suspended/resumed once per guest', async () => {
    const streams = guests.map((g) => g.events({ via, qmp, libvirt: ['lifecycle'] }));
    try {
      await Promise.all(streams.map((s) => s.ready));
      const seen = collect(streams);
      if (restart) {
        await restartDaemon();
        // each stream says first that libvirt's events of the gap are lost; the guests are driven after that
        await waitFor('a gap notice on every stream', () => seen.every((evs) => gaps(evs).length >= 1), { timeoutMs: 30_000 });
      }
      await Promise.all(guests.map(async (g) => {
        await g.suspend();
        await g.resume();
      }));
      await waitFor('STOP, RESUME and both lifecycle events from every guest', () =>
        seen.every((evs) => qmpNames(evs).filter((n) => n === 'STOP' || n === 'RESUME').length >= 2 && lifecycle(evs).length >= 2),
        { timeoutMs: 30_000 },
      );
      // a moment for duplicates to show up, had there been any
      await new Promise((r) => setTimeout(r, 300));
      seen.forEach((evs, i) => {
        expect(qmpNames(evs).filter((n) => n === 'STOP' || n === 'RESUME'), `guest many${i}`).toEqual(['STOP', 'RESUME']);
        expect(lifecycle(evs), `guest many${i}`).toEqual(['suspended', 'resumed']);
        for (const ev of evs) expect(ev.guest).toBe(`many${i}`);
        if (restart) {
          expect(gaps(evs), `guest many${i}: one gap notice`).toHaveLength(1);
          expect(evs[0]?.kind, `guest many${i}: the gap notice comes first`).toBe('libvirt-gap');
        } else {
          expect(gaps(evs), `guest many${i}`).toEqual([]);
        }
      });
    } finally {
      await Promise.all(streams.map((s) => s.return()));
    }
  }, 120_000);
});

it.each([
  { label: '', restart: false },
  { label: ', opened before a libvirtd restart', restart: true },
])('passthrough clients of different guests each see their own guest\'s events$label', async ({ restart }) => {
  const clients = await Promise.all(guests.slice(0, 6).map((g) => g.qmp({ via: 'passthrough' })));
  try {
    if (restart) await restartDaemon();
    const waits = clients.map((c) => c.waitForEvent('STOP', { timeoutMs: 20_000 }));
    await Promise.all(clients.map((c) => c.execute('stop')));
    // each resolves only with a STOP of its own guest; a lost event rejects at the timeout
    const events = await Promise.all(waits);
    expect(events.map((e) => e.event)).toEqual(Array(6).fill('STOP'));
    await Promise.all(guests.slice(0, 6).map((g) => g.resume()));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}, 60_000);
