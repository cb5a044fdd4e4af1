/**
 * A program that uses guest.events() exits by itself once it stops reading, and stays alive while it
 * awaits an event (child processes against a real private libvirtd), on the passthrough route and on
 * the monitor route (whose QMP events come through the guest's second-monitor socket).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../src/hybrid/index.js';
import { Connection } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { runScript } from '../harness/child.js';

const script = fileURLToPath(new URL('./fixtures/events-child.ts', import.meta.url));
const GUEST = 'evexit1';
/** A guest with a second QMP monitor, for the monitor route. */
const MONITOR_GUEST = 'evexit2';
let lv: PrivateLibvirtd;
let conn: Connection;

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'evx' });
  conn = await Connection.open(lv.uri);
  await conn.createXML(tinyGuestXml({ name: GUEST }));
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {} });
  await hv.createGuest(tinyGuestXml({ name: MONITOR_GUEST }), { qmpSocket: true });
  await hv.close(); // the guest keeps running
});

afterAll(async () => {
  await conn?.close();
  await lv?.stop();
});

describe('guest.events() and process exit', () => {
  it('a script that read one event and stopped reading exits by itself', async () => {
    // runScript fails the test if the child is still alive after 60 s
    const r = await runScript(script, ['read-one-then-stop', lv.uri, GUEST], undefined, 60_000);
    expect(r.stderr).toBe('');
    expect(r.lines.find((l) => 'got' in l)).toMatchObject({ got: expect.stringMatching(/^(lifecycle|qmp)$/), route: 'passthrough' });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  });

  it('a script awaiting next() stays alive until the event comes', async () => {
    const dom = await conn.lookupDomain(GUEST);
    let toggled: Promise<void> | undefined;
    const r = await runScript(script, ['await-next', lv.uri, GUEST], (line) => {
      // well after the child is idle: without the hold it would have exited by then, printing nothing more
      if (line.ready) toggled = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => dom.suspend()).then(() => dom.resume());
    });
    // the resume may still be on its way when the child has exited: finish it before the connection closes
    await toggled;
    expect(r.stderr).toBe('');
    expect(r.lines.find((l) => 'event' in l)).toMatchObject({ event: 'suspended' });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  }, 120_000);
});

describe('guest.events() on the monitor route and process exit', () => {
  it('a script that read one event and stopped reading exits by itself (the monitor socket does not hold it)', async () => {
    const r = await runScript(script, ['read-one-then-stop', lv.uri, MONITOR_GUEST, 'monitor'], undefined, 60_000);
    expect(r.stderr).toBe('');
    expect(r.lines.find((l) => 'got' in l)).toMatchObject({ got: expect.stringMatching(/^(lifecycle|qmp)$/), route: 'monitor' });
    expect(r.lines.find((l) => 'stillAlive' in l)).toBeUndefined();
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  }, 120_000);

  /**
   * Runs the child in `mode` on the monitor route and pauses/resumes the guest 1.5 s after it is ready,
   * well after it is idle: had nothing held it, it would have exited by then, printing nothing more.
   */
  async function expectAliveUntilStop(mode: string): Promise<void> {
    const dom = await conn.lookupDomain(MONITOR_GUEST);
    let toggled: Promise<void> | undefined;
    const r = await runScript(script, [mode, lv.uri, MONITOR_GUEST, 'monitor'], (line) => {
      if (line.ready) toggled = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => dom.suspend()).then(() => dom.resume());
    });
    await toggled;
    expect(r.stderr).toBe('');
    expect(r.lines.find((l) => 'ready' in l)).toMatchObject({ route: 'monitor' });
    expect(r.lines.find((l) => 'event' in l)).toMatchObject({ event: 'STOP' });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  }

  it('a script awaiting a QMP event through the monitor stays alive until it comes', () => expectAliveUntilStop('await-next'), 120_000);

  it('an open guest.qmp() client on the same socket still holds the process until it is closed', () => expectAliveUntilStop('client-open'), 120_000);
});
