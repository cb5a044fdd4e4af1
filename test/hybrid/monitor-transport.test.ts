import { existsSync, mkdtempSync, rmSync, chmodSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/qmp/client.js';
import type { QmpTransport } from '../../src/qmp/transport.js';
import { GuestQmpClient } from '../../src/hybrid/guest-client.js';
import { MonitorDisconnectedError, MonitorUnavailableError, PolicyError } from '../../src/hybrid/errors.js';
import { ensureMonitorDir } from '../../src/domain/monitor-dir.js';
import { removeStaleSocket } from '../../src/hybrid/stale-socket.js';
import { MonitorTransport, type MonitorConnectionChange } from '../../src/hybrid/monitor-transport.js';
import { OwnershipPolicy } from '../../src/hybrid/policy.js';
import { MonitorHub } from '../../src/hybrid/monitor-hub.js';
import { libvirtEventFilter } from '../../src/hybrid/passthrough-transport.js';
import { TaintTracker, parseTaints } from '../../src/hybrid/taint.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function qemu(): Promise<QemuInstance> {
  const q = await startQemu();
  cleanups.push(() => q.stop());
  return q;
}

function client(transport: QmpTransport, policy = new OwnershipPolicy()): GuestQmpClient {
  const c = new GuestQmpClient(transport, { guest: 'g', route: 'monitor', policy, validate: false });
  cleanups.push(() => c.close());
  return c;
}

describe('MonitorTransport + GuestQmpClient against a real QEMU', () => {
  it('negotiates itself (preNegotiated) and runs commands; the client never sends qmp_capabilities', async () => {
    const q = await qemu();
    const sent: string[] = [];
    const t = new MonitorTransport({ guest: 'g', resolvePath: async () => q.qmpPath });
    const c = new GuestQmpClient(t, { guest: 'g', route: 'monitor', policy: new OwnershipPolicy(), validate: false, onTraffic: (d, m) => d === 'out' && sent.push(String(m.execute)) });
    cleanups.push(() => c.close());
    await c.open();
    expect(t.capabilities).toMatchObject({ preNegotiated: true, pipelining: true });
    expect(c.greeting.version.qemu.major).toBe(7);
    expect(await c.execute('query-status')).toMatchObject({ status: expect.any(String) });
    expect(sent).toEqual(['query-status']);
  });

  it('refuses libvirt-owned commands before sending them, and honours per-call and per-client opt-in', async () => {
    const q = await qemu();
    const c = client(new MonitorTransport({ guest: 'g', resolvePath: async () => q.qmpPath }));
    await c.open();
    await expect(c.execute('device_add', { driver: 'nonexistent-device', id: 'x' })).rejects.toBeInstanceOf(PolicyError);
    await expect(c.hmp('quit')).rejects.toBeInstanceOf(PolicyError);
    await expect(c.commands.quit()).rejects.toBeInstanceOf(PolicyError);
    // opted in per call: QEMU itself now answers (machine none has no such device)
    await expect(c.execute('device_add', { driver: 'nonexistent-device', id: 'x' }, { allowUnsafe: true })).rejects.toMatchObject({ errorClass: 'GenericError' });
    expect(await c.hmp('info status')).toContain('VM status');

    const q2 = await qemu();
    const c2 = client(new MonitorTransport({ guest: 'g2', resolvePath: async () => q2.qmpPath }), new OwnershipPolicy({ allow: ['device_add'] }));
    await c2.open();
    await expect(c2.execute('device_add', { driver: 'nonexistent-device', id: 'x' })).rejects.toMatchObject({ errorClass: 'GenericError' });
  });

  it('QEMU SIGKILLed mid-command: the pending call rejects with MonitorDisconnectedError, the gap is reported, the client reconnects to the next QEMU', async () => {
    const q1 = await qemu();
    let path = q1.qmpPath;
    const changes: MonitorConnectionChange[] = [];
    const t = new MonitorTransport({ guest: 'g', resolvePath: async () => path, onConnectionChange: (ch) => changes.push(ch) });
    const c = client(t);
    await c.open();
    const events = c.events({ names: ['STOP'] });

    process.kill(q1.pid, 'SIGSTOP'); // QEMU cannot answer: the command stays pending
    const pending = c.execute('query-status').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await q1.kill('SIGKILL');
    const err = await pending;
    expect(err).toBeInstanceOf(MonitorDisconnectedError);
    expect((err as MonitorDisconnectedError).command).toBe('query-status');
    expect(c.runstate).toBe('running');
    expect(t.connected).toBe(false);
    expect(changes.map((ch) => ch.type)).toEqual(['disconnected']);

    // during the gap: fails at once, typed
    await expect(c.execute('query-status')).rejects.toBeInstanceOf(MonitorDisconnectedError);

    // the killed QEMU left its socket file: stale, removed
    expect(existsSync(q1.qmpPath)).toBe(true);
    expect(await removeStaleSocket(q1.qmpPath)).toBe('removed');
    expect(existsSync(q1.qmpPath)).toBe(false);

    const q2 = await qemu();
    path = q2.qmpPath;
    await t.reconnect();
    expect(changes.map((ch) => ch.type)).toEqual(['disconnected', 'reconnected']);
    expect((changes[1] as { gapMs: number }).gapMs).toBeGreaterThan(0);
    await c.execute('stop');
    const ev = await events.next();
    expect(ev.value).toMatchObject({ event: 'STOP' });
    await events.return();
  });

  it('a monitor held by another client: a clear MonitorUnavailableError after the handshake timeout', async () => {
    const q = await qemu();
    const holder = await QmpClient.connect({ path: q.qmpPath });
    cleanups.push(() => holder.close());
    const t = new MonitorTransport({ guest: 'g', resolvePath: async () => q.qmpPath, handshakeTimeoutMs: 300 });
    const c = client(t);
    const err = await c.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MonitorUnavailableError);
    expect((err as MonitorUnavailableError).reason).toBe('busy');
    expect((err as Error).message).toMatch(/another client/);
  });

  it('missing socket and stale socket: typed errors that say which', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libqemu-mt-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const missing = client(new MonitorTransport({ guest: 'g', resolvePath: async () => join(dir, 'none.sock') }));
    await expect(missing.open()).rejects.toThrow(/does not exist/);

    const q = await qemu();
    await q.kill('SIGKILL');
    const stale = client(new MonitorTransport({ guest: 'g', resolvePath: async () => q.qmpPath }));
    const err = await stale.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MonitorUnavailableError);
    expect((err as MonitorUnavailableError).reason).toBe('stale');
    expect((err as Error).message).toMatch(/stale/);
  });
});

describe('monitor socket directory', () => {
  it('creates a private 0700 directory owned by QEMU\'s uid and repairs its own directory', async () => {
    const base = mkdtempSync(join(tmpdir(), 'libqemu-md-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    chmodSync(base, 0o755);
    const dir = join(base, 'qmp');
    const owner = process.getuid!() === 0 ? { uid: 65534, gid: 65534 } : { uid: process.getuid!(), gid: process.getgid!() };
    await ensureMonitorDir(dir, owner, { fix: true });
    let st = statSync(dir);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(owner.uid);
    chmodSync(dir, 0o755);
    await ensureMonitorDir(dir, owner, { fix: true });
    st = statSync(dir);
    expect(st.mode & 0o777).toBe(0o700);
  });

  it("checks but never changes a caller's directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libqemu-md-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    await expect(ensureMonitorDir(dir, { uid: process.getuid!(), gid: process.getgid!() }, { fix: false })).rejects.toThrow(/must be mode 0700/);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    await expect(ensureMonitorDir(join(dir, 'nope'), { uid: 0, gid: 0 }, { fix: false })).rejects.toThrow(/does not exist/);
  });

  it('leaves a live socket alone and reports a missing one as absent', async () => {
    const q = await qemu();
    expect(await removeStaleSocket(q.qmpPath)).toBe('live');
    expect(existsSync(q.qmpPath)).toBe(true);
    expect(await removeStaleSocket(join(q.dir, 'nothing.sock'))).toBe('absent');
  });
});

describe('MonitorHub: one monitor connection shared by several clients', () => {
  it('routes each reply to its own client, broadcasts events, and closes the socket with the last client', async () => {
    const q = await qemu();
    const hub = new MonitorHub({ guest: 'g', resolvePath: async () => q.qmpPath });
    cleanups.push(() => hub.close());
    const a = client(hub.channel());
    const b = client(hub.channel());
    await Promise.all([a.open(), b.open()]);
    expect(hub.channelCount).toBe(2);
    // both clients number their commands from libqemu-1: the hub keeps them apart
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).execute('query-status')));
    expect(results.every((r) => typeof (r as { status: string }).status === 'string')).toBe(true);
    const stops = [a.waitForEvent('STOP', { timeoutMs: 5000 }), b.waitForEvent('STOP', { timeoutMs: 5000 })];
    await a.execute('stop');
    expect((await Promise.all(stops)).map((e) => e.event)).toEqual(['STOP', 'STOP']);
    await a.close();
    expect(await b.execute('query-status')).toMatchObject({ status: 'paused' });
    expect(hub.transport?.connected).toBe(true);
    await b.close();
    expect(hub.transport).toBeUndefined();
    // the monitor is free again for anyone else
    const other = await QmpClient.connect({ path: q.qmpPath }, { handshakeTimeoutMs: 2000 });
    await other.close();
  });
});

/** Unix-socket handles that keep this process alive (an unref'd socket is not listed). */
const heldSockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'PipeWrap').length;

describe('which monitor connections keep the process alive', () => {
  it('a listening channel does not; a client channel, or a command in flight on any channel, does', async () => {
    const q = await qemu();
    const base = heldSockets();
    const hub = new MonitorHub({ guest: 'g', resolvePath: async () => q.qmpPath });
    cleanups.push(() => hub.close());
    const listener = client(hub.channel({ holdsProcess: false }));
    await listener.open();
    expect(hub.transport?.connected).toBe(true);
    expect(heldSockets()).toBe(base);

    const user = client(hub.channel());
    await user.open();
    expect(heldSockets()).toBe(base + 1);
    await user.close();
    expect(heldSockets()).toBe(base);

    // a reply awaited on the listener holds the process until it comes
    process.kill(q.pid, 'SIGSTOP');
    const pending = listener.execute('query-status');
    await new Promise((r) => setTimeout(r, 50));
    expect(heldSockets()).toBe(base + 1);
    process.kill(q.pid, 'SIGCONT');
    await pending;
    expect(heldSockets()).toBe(base);
  });

  it('a connection told not to hold keeps that after QEMU restarts and it dials again', async () => {
    const q1 = await qemu();
    let path = q1.qmpPath;
    const t = new MonitorTransport({ guest: 'g', resolvePath: async () => path });
    const c = client(t);
    await c.open();
    const base = heldSockets() - 1;
    t.holdProcess(false);
    expect(heldSockets()).toBe(base);
    await q1.kill('SIGKILL');
    await removeStaleSocket(q1.qmpPath);
    const q2 = await qemu();
    path = q2.qmpPath;
    const baseNow = heldSockets(); // QEMU's own pipes changed with the new process
    await t.reconnect();
    expect(t.connected).toBe(true);
    expect(heldSockets()).toBe(baseNow);
    t.holdProcess(true);
    expect(heldSockets()).toBe(baseNow + 1);
  });
});

describe('passthrough event filter and taint parsing', () => {
  it('hands one name down as is and several as an anchored alternation', () => {
    expect(libvirtEventFilter(undefined)).toEqual({});
    expect(libvirtEventFilter(['STOP'])).toEqual({ event: 'STOP' });
    expect(libvirtEventFilter(['STOP', 'RESUME', 'STOP'])).toEqual({ event: '^(STOP|RESUME)$', regex: true });
    expect(() => libvirtEventFilter(['ST(OP'])).toThrow(/not a QEMU event name/);
  });

  it('recognises libvirt taint messages and reports each mark once', () => {
    const msgs = ['tainted: custom configuration parameters specified', 'tainted: custom monitor control commands issued', 'deprecated configuration: machine type pc-i440fx-1.4'];
    expect(parseTaints(msgs).map((t) => t.flag)).toEqual(['custom-argv', 'custom-monitor']);
    const tracker = new TaintTracker();
    expect(tracker.fresh(msgs.slice(0, 1)).map((t) => t.flag)).toEqual(['custom-argv']);
    expect(tracker.fresh(msgs).map((t) => t.flag)).toEqual(['custom-monitor']);
    expect(tracker.fresh(msgs)).toEqual([]);
  });
});
