/**
 * The hybrid facade against a real private libvirtd (session mode, uid 65534) and real TCG guests:
 * both QMP routes and auto, state consistency between libvirt and QMP, reconnect after restart,
 * SIGKILL, the ownership policy, awkward names and paths, and the typed errors.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Guest,
  GuestNotFoundError,
  GuestNotRunningError,
  Hypervisor,
  MonitorDisconnectedError,
  PolicyError,
  type GuestEvent,
  type GuestEventStream,
  type TaintReport,
} from '../../src/hybrid/index.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { nextMatching, waitFor } from '../harness/wait.js';

const execFileP = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let lv: PrivateLibvirtd;
let hv: Hypervisor;
const taintReports: TaintReport[] = [];
let seq = 0;

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'hyb' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: (r) => taintReports.push(r) });
});

afterAll(async () => {
  await hv?.close();
  await lv?.stop();
});

function name(tag: string): string {
  return `h${process.pid % 1000}-${tag}-${++seq}`;
}

/** The next event matching `pred` (others are skipped), bounded. */
function nextEvent(stream: GuestEventStream, pred: (e: GuestEvent) => boolean): Promise<GuestEvent> {
  return nextMatching(stream, pred, { what: 'a matching guest event' });
}

/** QEMU's pid for a libvirt guest (libvirt names it with -name guest=NAME,…). */
function qemuPid(guestName: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('-name');
      if (i >= 0 && argv[i + 1]?.startsWith(`guest=${guestName.replaceAll(',', ',,')},`)) return Number(entry);
    } catch {
      // process gone meanwhile
    }
  }
  throw new Error(`no QEMU process for guest ${guestName}`);
}

async function startedGuest(tag: string, withMonitor = true): Promise<Guest> {
  const g = await hv.defineGuest(tinyGuestXml({ name: name(tag) }), withMonitor ? { qmpSocket: true } : {});
  await g.start();
  return g;
}

async function remove(g: Guest): Promise<void> {
  if (await g.isRunning().catch(() => false)) await g.destroy().catch(() => undefined);
  await g.undefine().catch(() => undefined);
}

describe('routes', () => {
  let withMon: Guest;
  let without: Guest;
  beforeAll(async () => {
    withMon = await startedGuest('mon');
    without = await startedGuest('nomon', false);
  });
  afterAll(async () => {
    if (withMon) await remove(withMon);
    if (without) await remove(without);
  });

  it("qmpSocket: true puts the monitor in the hypervisor's directory, named after the UUID", async () => {
    expect(await withMon.monitorSocket()).toBe(join(lv.qmpDir, `${withMon.uuid}.qmp`));
  });

  it('qmpRoutes(): monitor and passthrough with a second monitor, passthrough alone without', async () => {
    expect(await withMon.qmpRoutes()).toEqual(['monitor', 'passthrough']);
    expect(await without.qmpRoutes()).toEqual(['passthrough']);
  });

  it('monitor, passthrough and auto reach the same QEMU; auto picks the monitor when there is one', async () => {
    const auto = await withMon.qmp();
    const mon = await withMon.qmp({ via: 'monitor' });
    const pt = await withMon.qmp({ via: 'passthrough' });
    try {
      expect([auto.route, mon.route, pt.route]).toEqual(['monitor', 'monitor', 'passthrough']);
      for (const c of [auto, mon, pt]) expect(await c.execute('query-status')).toMatchObject({ status: 'running', running: true });
      // the same QEMU: both routes see the same process and name
      expect(await mon.execute('query-name')).toEqual(await pt.execute('query-name'));
      expect(pt.greeting.version.qemu.major).toBe(7);
    } finally {
      await Promise.all([auto.close(), mon.close(), pt.close()]);
    }
  });

  it("the passthrough transport says what libvirt's monitor allows", async () => {
    const pt = await withMon.qmp({ via: 'passthrough' });
    // fds pass (virDomainQemuMonitorCommandWithFiles, one per command) because this daemon is on a local unix socket
    expect(pt.transport.capabilities).toMatchObject({ preNegotiated: true, pipelining: false, oob: false, fdPassing: true, maxFds: 1 });
    await pt.close();
  });

  it('two clients share the one monitor connection (a second monitor serves one connection at a time)', async () => {
    const [a, b] = [await withMon.qmp({ via: 'monitor' }), await withMon.qmp({ via: 'monitor' })];
    const [ra, rb] = await Promise.all([a.execute('query-version'), b.execute('query-version')]);
    expect(ra).toEqual(rb);
    await Promise.all([a.close(), b.close()]);
  });

  it("without a second monitor auto uses passthrough, and via 'monitor' says there is none", async () => {
    const autoNo = await without.qmp();
    expect(autoNo.route).toBe('passthrough');
    await autoNo.close();
    await expect(without.qmp({ via: 'monitor' })).rejects.toThrow(/no second QMP monitor/);
  });

  it('hv.guests() lists each guest with its state, routes and monitor socket', async () => {
    const listed = await hv.guests();
    expect(listed.find((s) => s.name === withMon.name)).toMatchObject({ state: 'running', routes: ['monitor', 'passthrough'], monitorSocket: await withMon.monitorSocket() });
    expect(listed.find((s) => s.name === without.name)).toMatchObject({ state: 'running', routes: ['passthrough'], monitorSocket: undefined });
  });

  it('hv.guest() hands out one Guest (and so one monitor connection) per guest, by name or UUID', async () => {
    expect(await hv.guest(withMon.uuid)).toBe(withMon);
    expect(await hv.guest(withMon.name)).toBe(withMon);
  });

  it('createGuest: a transient guest with a second monitor; once destroyed it is gone', async () => {
    const g = await hv.createGuest(tinyGuestXml({ name: name('transient') }), { qmpSocket: true });
    const qmp = await g.qmp();
    expect(qmp.route).toBe('monitor');
    expect((await qmp.execute('query-name')).name).toBe(g.name);
    await qmp.close();
    await g.destroy();
    await expect(g.qmp()).rejects.toBeInstanceOf(GuestNotFoundError);
    await expect(hv.guest(g.name)).rejects.toBeInstanceOf(GuestNotFoundError);
  });

  it('passthrough hands QMP event name filters down to libvirt', async () => {
    const g = await startedGuest('ptev', false);
    try {
      const pt = await g.qmp({ via: 'passthrough', events: ['STOP', 'RESUME'] });
      const seen: string[] = [];
      pt.on('event', (e) => seen.push(e.event));
      const stream = g.events({ libvirt: false, qmp: ['RESUME'] });
      await stream.ready;
      expect(stream.qmpRoute).toBe('passthrough');
      await g.suspend();
      await g.resume();
      await g.reset(); // RESET is filtered out by libvirt on both subscriptions
      const ev = await nextEvent(stream, () => true);
      expect(ev).toMatchObject({ source: 'qmp', route: 'passthrough', event: 'RESUME' });
      // A marker after the reset: libvirt delivers one connection's events in order, so once the second
      // STOP is here, a RESET that leaked through the filter would be here too.
      await g.suspend();
      await g.resume();
      await waitFor('both STOP/RESUME pairs through passthrough', async () => seen.filter((e) => e === 'STOP').length === 2 && seen.filter((e) => e === 'RESUME').length === 2);
      expect(seen).toEqual(['STOP', 'RESUME', 'STOP', 'RESUME']);
      await stream.return();
      await pt.close();
    } finally {
      await remove(g);
    }
  });
});

describe('state consistency between libvirt and QMP', () => {
  let g: Guest;
  beforeAll(async () => {
    g = await startedGuest('state');
  });
  afterAll(async () => {
    if (g) await remove(g);
  });

  it('QMP stop → libvirt reports paused, and its suspended event reaches the merged stream', async () => {
    const events = g.events();
    const qmp = await g.qmp({ via: 'monitor' });
    try {
      await events.ready;
      await qmp.execute('stop');
      await waitFor('libvirt to report paused', async () => (await g.state()).state === 'paused');
      expect(await nextEvent(events, (e) => e.source === 'libvirt' && e.kind === 'lifecycle')).toMatchObject({ event: 'suspended' });
      await g.resume();
      expect((await qmp.execute('query-status')).status).toBe('running');
    } finally {
      await events.return();
      await qmp.close();
    }
  });

  it("libvirt suspend → QEMU's STOP event, on the client and in the merged stream (monitor route)", async () => {
    const events = g.events();
    const qmp = await g.qmp({ via: 'monitor' });
    try {
      await events.ready;
      expect(events.qmpRoute).toBe('monitor');
      const stop = qmp.waitForEvent('STOP', { timeoutMs: 10_000 });
      await g.suspend();
      expect((await stop).event).toBe('STOP');
      expect((await qmp.execute('query-status')).status).toBe('paused');
      expect(await nextEvent(events, (e) => e.source === 'qmp' && e.kind === 'qmp' && e.event === 'STOP')).toMatchObject({ route: 'monitor' });
      await g.resume();
    } finally {
      await events.return();
      await qmp.close();
    }
  });
});

describe('closing', () => {
  it('guest.close() ends its event streams and QMP clients; hv.guest() then hands out a fresh Guest', async () => {
    const g = await startedGuest('close');
    try {
      const events = g.events();
      await events.ready;
      const qmp = await g.qmp();
      await g.close();
      // what was buffered is still delivered, then the stream ends
      const drained = (async () => {
        let n = 0;
        while (!(await events.next()).done) n++;
        return n;
      })();
      const r = await Promise.race([drained, new Promise((res) => setTimeout(() => res('hung'), 5000))]);
      expect(typeof r).toBe('number');
      expect(qmp.runstate).toBe('closed');
      const again = await hv.guest(g.name);
      expect(again).not.toBe(g);
      const q2 = await again.qmp();
      expect(await q2.execute('query-status')).toMatchObject({ running: true });
      await q2.close();
    } finally {
      await remove(g);
    }
  });
  it("a guest's watcher, event streams and passthrough clients share one libvirt registration per filter, all released on close", async () => {
    const g = await startedGuest('share');
    const conn = hv.connection;
    const before = conn.activeEventRegistrations;
    try {
      const mon = await g.qmp({ via: 'monitor' }); // the reconnect watcher: lifecycle
      const [a, b] = [g.events({ qmp: false }), g.events({ qmp: false })]; // lifecycle (shared) + reboot + agent-lifecycle
      const [p1, p2] = [await g.qmp({ via: 'passthrough', events: ['STOP'] }), await g.qmp({ via: 'passthrough', events: ['STOP'] })]; // STOP
      await Promise.all([a.ready, b.ready]);
      expect(conn.activeEventRegistrations - before).toBe(4);
      const stops = [p1, p2].map((c) => new Promise<string>((res) => c.on('event', (e) => res(e.event))));
      await mon.execute('stop');
      expect(await Promise.all(stops)).toEqual(['STOP', 'STOP']); // each consumer gets every event
      for (const s of [a, b]) expect(await nextEvent(s, (e) => e.kind === 'lifecycle')).toMatchObject({ event: 'suspended' });
      await g.close();
      await waitFor('every registration to be released', async () => conn.activeEventRegistrations === before);
    } finally {
      await remove(g);
    }
  });
});

describe('restarts and crashes', () => {
  it('guest destroyed and started again: the monitor client reconnects by itself and the gap is reported', async () => {
    const g = await startedGuest('restart');
    try {
      const qmp = await g.qmp({ via: 'monitor' });
      const events = g.events({ libvirt: false });
      await events.ready;
      await g.destroy();
      expect(await nextEvent(events, (e) => e.source === 'libqemu' && e.kind === 'qmp-disconnected')).toBeTruthy();
      await expect(qmp.execute('query-status')).rejects.toBeInstanceOf(MonitorDisconnectedError);
      await g.start();
      const back = await nextEvent(events, (e) => e.source === 'libqemu' && e.kind === 'qmp-reconnected');
      expect(back.kind === 'qmp-reconnected' && back.gapMs).toBeGreaterThan(0);
      expect(await qmp.execute('query-status')).toMatchObject({ running: true });
      expect(qmp.runstate).toBe('running');
      await events.return();
      await qmp.close();
    } finally {
      await remove(g);
    }
  });

  it("passthrough on a guest that stopped: the call rejects with GuestNotRunningError whose cause is libvirt's own error, code kept", async () => {
    const g = await startedGuest('ptstop', false);
    try {
      const qmp = await g.qmp({ via: 'passthrough' });
      await g.destroy();
      const err = await qmp.execute('query-status').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestNotRunningError);
      expect((err as GuestNotRunningError).guest).toBe(g.name);
      const cause = (err as Error).cause;
      expect(cause).toBeInstanceOf(LibvirtError);
      expect((cause as LibvirtError).codeName).toMatch(/^VIR_ERR_(OPERATION_INVALID|NO_DOMAIN)$/);
      await qmp.close();
    } finally {
      await remove(g);
    }
  });

  it('QEMU SIGKILLed: pending calls reject, the stale socket is removed on the next start', async () => {
    const g = await startedGuest('kill');
    try {
      let sent = 0;
      const qmp = await g.qmp({ via: 'monitor', client: { onTraffic: (dir) => dir === 'out' && sent++ } });
      const path = (await g.monitorSocket())!;
      const pid = qemuPid(g.name);
      process.kill(pid, 'SIGSTOP'); // the command below stays pending
      const before = sent;
      const pending = qmp.execute('query-status').catch((e: unknown) => e);
      // on its way to the stopped QEMU: the command itself, or the schema query its validation needs first
      await waitFor('a command to be on its way', () => sent > before);
      process.kill(pid, 'SIGKILL');
      expect(await pending).toBeInstanceOf(MonitorDisconnectedError);
      await waitFor('libvirt to notice the dead QEMU', async () => (await g.state()).state === 'shutoff');
      expect(existsSync(path)).toBe(true); // SIGKILL leaves the socket file behind
      await expect(g.qmp()).rejects.toBeInstanceOf(GuestNotRunningError);
      expect(existsSync(path)).toBe(false); // …and the facade removed it
      await g.start();
      await waitFor('the monitor to come back', async () => (await qmp.execute('query-status').catch(() => undefined)) as { running: boolean } | undefined);
      await qmp.close();
    } finally {
      await remove(g);
    }
  });
});

describe('ownership policy', () => {
  let g: Guest;
  beforeAll(async () => {
    g = await startedGuest('policy');
  });
  afterAll(async () => {
    if (g) await remove(g);
  });

  it.each(['monitor', 'passthrough'] as const)('refuses libvirt-owned commands on the %s route, naming libvirt’s way', async (via) => {
    const c = await g.qmp({ via });
    try {
      const err = await c.execute('device_add', { driver: 'e1000', id: 'nic9' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PolicyError);
      expect((err as PolicyError).instead).toContain('virDomainAttachDeviceFlags');
      await expect(c.commands.quit()).rejects.toBeInstanceOf(PolicyError);
      await expect(c.execute('migrate', { uri: 'tcp:127.0.0.1:1' })).rejects.toThrow(/virDomainMigrate3/);
    } finally {
      await c.close();
    }
  });

  it.each(['monitor', 'passthrough'] as const)('lets one call through with allowUnsafe on the %s route', async (via) => {
    const c = await g.qmp({ via });
    // QEMU answers now (no such driver, so nothing changes)
    await expect(c.execute('device_add', { driver: 'no-such-driver', id: 'x' }, { allowUnsafe: true })).rejects.toMatchObject({ errorClass: 'GenericError' });
    await c.close();
  });

  it("lets a client's allow list through", async () => {
    const optedIn = await g.qmp({ via: 'passthrough', allow: ['device_add'] });
    await expect(optedIn.execute('device_add', { driver: 'no-such-driver', id: 'x' })).rejects.toMatchObject({ errorClass: 'GenericError' });
    await optedIn.close();
  });

  it('reports each taint mark once: custom-argv (the <qemu:commandline>) and custom-monitor (passthrough)', async () => {
    for (let i = 0; i < 2; i++) await (await g.qmp({ via: 'passthrough' })).close();
    const mine = taintReports.filter((r) => r.guest === g.name).flatMap((r) => r.taints.map((t) => t.flag));
    expect(mine.sort()).toEqual(['custom-argv', 'custom-monitor']);
    expect((await g.taint()).map((t) => t.flag).sort()).toEqual(['custom-argv', 'custom-monitor']);
  });
});

describe('names, paths and errors', () => {
  let off: Guest;
  beforeAll(async () => {
    off = await hv.defineGuest(tinyGuestXml({ name: name('off') }), { qmpSocket: true });
  });
  afterAll(async () => {
    if (off) await remove(off);
  });

  it('domain names and socket paths with quotes, ampersands and spaces', async () => {
    const odd = `q'"& x ${++seq}`;
    const dir = join(lv.qmpDir, `d "q" & 'x' y`);
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, lv.uid, lv.uid);
    const sock = join(dir, `s "1" & 'b',c.qmp`);
    const xml = tinyGuestXml({ name: 'placeholder' }).replace('<name>placeholder</name>', `<name>${odd.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')}</name>`);
    const g = await hv.defineGuest(xml, { qmpSocket: sock });
    try {
      expect(g.name).toBe(odd);
      expect(await g.monitorSocket()).toBe(sock);
      await g.start();
      const c = await g.qmp({ via: 'monitor' });
      expect((await c.execute('query-name')).name).toBe(odd);
      expect(existsSync(sock)).toBe(true);
      await c.close();
      expect((await hv.guest(odd)).uuid).toBe(g.uuid);
    } finally {
      await remove(g);
    }
  });

  it('a guest that does not exist: GuestNotFoundError with a hint', async () => {
    const missing = await hv.guest('no-such-guest').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(GuestNotFoundError);
    expect((missing as GuestNotFoundError).hint).toMatch(/hv.guests\(\)/);
  });

  it.each(['auto', 'monitor', 'passthrough'] as const)("a defined guest that is not running: GuestNotRunningError via '%s'", async (via) => {
    const err = await off.qmp({ via }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestNotRunningError);
    expect((err as GuestNotRunningError).message).toMatch(/not running \(state: shutoff\)/);
  });

  it('bad arguments are InvalidArgumentErrors that name the option', async () => {
    await expect(off.qmp({ via: 'sideways' as 'monitor' })).rejects.toThrow(/via must be/);
    expect(() => off.events({ via: 'sideways' as 'monitor' })).toThrow(/via must be/);
    expect(() => off.events({ qmp: 'STOP' as never })).toThrow(/list of event names/);
    expect(() => off.events({ bufferSize: 0 })).toThrow(/positive integer/);
    await expect(hv.guest('')).rejects.toThrow(/guest name or UUID/);
    await expect(hv.defineGuest('<domain><name>x</domain>')).rejects.toThrow(/not well-formed/);
  });

  it.skipIf(process.getuid?.() !== 0)("a monitor socket this user may not open: MonitorUnavailableError 'permission'", async () => {
    const g = await startedGuest('perm');
    try {
      const path = (await g.monitorSocket())!;
      // root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH is like any other user here: the 0700 monitor
      // directory belongs to QEMU's uid (and unlike a switch of uid, it can still read this checkout)
      const fixture = join(repoRoot, 'test/hybrid/fixtures/open-monitor-as.ts');
      const { stdout } = await execFileP('setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--', process.execPath, '--import', 'tsx', fixture, path], {
        cwd: repoRoot,
        timeout: 30_000,
      });
      const outcome = JSON.parse(stdout.trim().split('\n').pop()!) as { name: string; message: string; hint: string; reason: string };
      expect(outcome.name).toBe('MonitorUnavailableError');
      expect(outcome.message).toMatch(/permission denied/);
      expect(outcome.reason).toBe('permission');
      expect(outcome.hint).toMatch(/passthrough/);
    } finally {
      await remove(g);
    }
  });
});

describe("libqemu's own monitor directory", () => {
  it('goes when the hypervisor closes, once empty and named by no guest; a running or defined guest keeps it; a given directory is never removed', async () => {
    // no monitorDir: libqemu's default for this URI (new with every private daemon, so it does not exist yet)
    const own = await Hypervisor.connect(lv.uri, { onTaint: () => {} });
    const dir = own.monitorDir;
    const tName = name('owndir-t');
    const pName = name('owndir-p');
    const closeAgain = async (options: { monitorDir?: string } = {}) => (await Hypervisor.connect(lv.uri, { ...options, onTaint: () => {} })).close();
    try {
      expect(dir).toMatch(/\/libqemu-qmp-\d+-[0-9a-f]{8}$/);
      expect(existsSync(dir)).toBe(false);
      const running = await own.createGuest(tinyGuestXml({ name: tName }), { qmpSocket: true });
      const defined = await own.defineGuest(tinyGuestXml({ name: pName }), { qmpSocket: true });
      expect(readdirSync(dir)).toEqual([`${running.uuid}.qmp`]);
      await own.close();
      expect(readdirSync(dir)).toEqual([`${running.uuid}.qmp`]); // not empty: the running guest's socket

      await (await hv.guest(running.uuid)).destroy();
      await waitFor('QEMU to remove its socket', async () => readdirSync(dir).length === 0);
      await closeAgain();
      expect(existsSync(dir)).toBe(true); // empty, but a defined guest expects its socket there on its next start

      await (await hv.guest(defined.uuid)).undefine();
      await closeAgain({ monitorDir: dir });
      expect(existsSync(dir)).toBe(true); // the caller's directory (even when libqemu made it)
      await closeAgain();
      expect(existsSync(dir)).toBe(false);
    } finally {
      await own.close(); // idempotent
      await hv.guest(tName).then((g) => g.destroy(), () => undefined);
      await hv.guest(pName).then((g) => remove(g), () => undefined);
      // fs.rmSync(dir) would hide the bug this test is about; only a failed run gets here with it present
      if (existsSync(dir)) await execFileP('rmdir', [dir]).catch(() => undefined);
    }
  });
});
