/**
 * The typed guest agent against the real qemu-ga in libqemu's Linux test guest, under a real private
 * libvirtd: every typed method, the typed errors, a reboot through the agent with its lifecycle events,
 * and an agent that stops answering (stopped, then killed) while the Hypervisor keeps working. One booted
 * guest is shared; the tests run in order.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentCommandError,
  AgentCommandNotSupportedError,
  AgentTimeoutError,
  AgentUnavailableError,
  type AgentTrafficEntry,
} from '../../src/agent/index.js';
import { Hypervisor, type Guest, type GuestEventStream } from '../../src/hybrid/index.js';
import { Connection } from '../../src/libvirt/index.js';
import { VIR_DOMAIN_GUEST_INFO_FILESYSTEM, VIR_DOMAIN_GUEST_INFO_HOSTNAME, VIR_DOMAIN_GUEST_INFO_OS, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT } from '../../src/generated/libvirt/constants.js';
import { LINUX_GUEST_READY_LINE, startPrivateLibvirtd, type PrivateLibvirtd } from '../../src/testing/index.js';
import { bootLinuxGuest, isAgent, nextEvent, type BootedGuest } from './helpers.js';

const execFileP = promisify(execFile);
let lv: PrivateLibvirtd;
let hv: Hypervisor;
let booted: BootedGuest;
let guest: Guest;
let events: GuestEventStream;
const traffic: AgentTrafficEntry[] = [];

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'agt' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir });
  booted = await bootLinuxGuest(hv, lv, `ag${process.pid % 10000}`, { scratchDiskMiB: 16, nic: true });
  guest = booted.guest;
  events = booted.events;
});

afterAll(async () => {
  await events?.return();
  await guest?.destroy().catch(() => undefined);
  await hv?.close();
  await lv?.stop();
});

describe('the Linux test guest', () => {
  it('boots to a running agent, says so on its serial console, and libvirt reports the agent connected', async () => {
    expect(booted.files.console()).toContain(LINUX_GUEST_READY_LINE);
    const ev = await nextEvent(events, isAgent('connected'));
    expect(ev).toMatchObject({ source: 'libvirt', kind: 'agent-lifecycle', state: 'connected', reason: 'channel' });
  });
});

describe('typed agent commands', () => {
  it('ping, info and supports()', async () => {
    const agent = guest.agent();
    await agent.ping();
    const info = await agent.info();
    expect(info.version).toMatch(/^\d+\.\d+/);
    expect(info.supported_commands.map((c) => c.name)).toContain('guest-exec');
    expect(await agent.supports('guest-ping')).toBe(true);
    // Windows-only, so qemu-ga on Linux lists it as disabled
    expect(await agent.supports('guest-get-devices')).toBe(false);
    expect(await agent.supports('guest-no-such-command')).toBe(false);
  });

  it('OS info and host name come from the guest', async () => {
    const agent = guest.agent();
    const os = await agent.getOsInfo();
    expect(os.id).toBe('libqemu-test-guest');
    expect(os['kernel-release']).toMatch(/cloud-amd64$/);
    expect(os.machine).toBe('x86_64');
    expect(await agent.getHostName()).toBe('libqemu-guest');
    expect(await agent.getTimezone()).toMatchObject({ offset: 0 }); // no /etc/localtime: UTC
  });

  it('setTime then getTime reads back the time that was set', async () => {
    const agent = guest.agent();
    const target = new Date('2031-05-17T12:00:00Z');
    await agent.setTime(target);
    const ns = await agent.getTime();
    const ms = Number(ns / 1_000_000n);
    // the guest clock runs on from the set value: it is at or after it, and nowhere near today
    expect(ms).toBeGreaterThanOrEqual(target.getTime());
    expect(ms).toBeLessThan(target.getTime() + 10 * 60_000);
    await agent.setTime(new Date()); // put it back for the rest of the file
  });

  it('network interfaces: lo and the virtio NIC with its address', async () => {
    const ifaces = await guest.agent().getNetworkInterfaces();
    const byName = new Map(ifaces.map((i) => [i.name, i]));
    expect(byName.get('lo')?.['ip-addresses']?.map((a) => a['ip-address'])).toContain('127.0.0.1');
    const eth0 = byName.get('eth0');
    expect(eth0?.['hardware-address']).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(eth0?.['ip-addresses']).toContainEqual({ 'ip-address': '10.0.2.15', 'ip-address-type': 'ipv4', prefix: 24 });
  });

  it('file system info lists the scratch disk, and freeze / status / thaw round-trip on it', async () => {
    const agent = guest.agent();
    const fs = await agent.getFsInfo();
    const scratch = fs.find((f) => f.mountpoint === '/mnt/scratch');
    expect(scratch).toMatchObject({ name: 'vda', type: 'ext4' });
    expect(scratch?.disk[0]?.['bus-type']).toBe('virtio');
    expect(await agent.fsFreezeStatus()).toBe('thawed');
    try {
      expect(await agent.fsFreeze()).toBeGreaterThanOrEqual(1);
      expect(await agent.fsFreezeStatus()).toBe('frozen');
    } finally {
      expect(await agent.fsThaw()).toBeGreaterThanOrEqual(1);
    }
    expect(await agent.fsFreezeStatus()).toBe('thawed');
    // only the listed mount points
    try {
      expect(await agent.fsFreeze({ mountpoints: ['/mnt/scratch'] })).toBe(1);
      expect(await agent.fsFreezeStatus()).toBe('frozen');
    } finally {
      expect(await agent.fsThaw()).toBe(1);
    }
    // writable again once thawed
    const w = await agent.exec('/bin/sh', ['-c', 'echo x > /mnt/scratch/after-thaw && cat /mnt/scratch/after-thaw']);
    expect(w).toMatchObject({ exitCode: 0, stdout: 'x\n' });
  });

  it('exec: output decoded, a non-zero exit code, stderr, stdin and environment', async () => {
    const agent = guest.agent();
    const r = await agent.exec('/bin/sh', ['-c', 'echo "hello from $(hostname)"; echo oops >&2; exit 3']);
    expect(r).toMatchObject({ exitCode: 3, stdout: 'hello from libqemu-guest\n', stderr: 'oops\n', stdoutTruncated: false });
    expect(r.signal).toBeUndefined();
    const echo = await agent.exec('/bin/cat', [], { input: 'piped ünïcode\n' });
    expect(echo).toMatchObject({ exitCode: 0, stdout: 'piped ünïcode\n' });
    const env = await agent.exec('/bin/sh', ['-c', 'echo "$GREETING"'], { env: ['GREETING=hi there', 'PATH=/bin'] });
    expect(env.stdout).toBe('hi there\n');
    const killed = await agent.exec('/bin/sh', ['-c', 'kill -9 $$']);
    expect(killed).toMatchObject({ exitCode: undefined, signal: 9 });
  });

  it('exec of a program that does not exist fails with the agent\'s typed command error', async () => {
    const err = await guest.agent().exec('/no/such/program').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentCommandError);
    expect((err as AgentCommandError).command).toBe('guest-exec');
  });

  it('exec: a process outliving its timeout fails with AgentTimeoutError; an aborted exec stops waiting', async () => {
    const agent = guest.agent();
    const err = await agent.exec('/bin/sleep', ['30'], { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentTimeoutError);
    expect((err as AgentTimeoutError).reason).toBe('timeout');
    const ac = new AbortController();
    const pending = agent.exec('/bin/sleep', ['30'], { signal: ac.signal }).catch((e: unknown) => e);
    setTimeout(() => ac.abort(new Error('caller gave up')), 200);
    expect(((await pending) as Error).message).toBe('caller gave up');
    await agent.exec('/bin/sh', ['-c', 'killall sleep']);
  });

  it('writeFile then readFile returns the same bytes (text, binary, larger than one chunk, append)', async () => {
    const agent = guest.agent();
    await agent.writeFile('/tmp/hello.txt', 'line one\n');
    await agent.writeFile('/tmp/hello.txt', 'line two\n', { append: true });
    expect((await agent.readFile('/tmp/hello.txt')).toString()).toBe('line one\nline two\n');
    const binary = Buffer.alloc(300_000);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 7919) & 0xff;
    await agent.writeFile('/tmp/blob.bin', binary);
    const back = await agent.readFile('/tmp/blob.bin');
    expect(back.equals(binary)).toBe(true);
    expect((await agent.exec('/bin/sh', ['-c', 'wc -c < /tmp/blob.bin'])).stdout.trim()).toBe(String(binary.length));
    await agent.writeFile('/tmp/empty', '');
    expect((await agent.readFile('/tmp/empty')).length).toBe(0);
  });

  it('readFile of a missing file fails with AgentCommandError carrying the guest\'s reason', async () => {
    const err = await guest.agent().readFile('/no/such/file').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentCommandError);
    expect((err as AgentCommandError).desc).toMatch(/No such file or directory/);
  });

  it('setUserPassword sets a hash in /etc/shadow, and the password reaches no log', async () => {
    const secret = 'S3cret-pässword!';
    const agent = guest.agent({ onTraffic: (e) => traffic.push(e) });
    await agent.setUserPassword('root', secret);
    const shadow = (await agent.readFile('/etc/shadow')).toString();
    const root = shadow.split('\n').find((l) => l.startsWith('root:'));
    expect(root?.split(':')[1]).toMatch(/^\$6\$/);
    const logged = JSON.stringify(traffic);
    expect(traffic.some((e) => e.command === 'guest-set-user-password' && e.direction === 'send')).toBe(true);
    expect(logged).not.toContain(secret);
    expect(logged).not.toContain(Buffer.from(secret).toString('base64'));
    const err = await agent.setUserPassword('nosuchuser', secret).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentCommandError);
    expect(String((err as Error).message)).not.toContain(secret);
  });

  it('commands the agent refuses fail typed: unknown → AgentCommandNotSupportedError(unknown), disabled → (disabled)', async () => {
    const agent = guest.agent();
    const unknown = await agent.command('guest-no-such-command').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(AgentCommandNotSupportedError);
    expect(unknown).toMatchObject({ command: 'guest-no-such-command', why: 'unknown' });
    const disabled = await agent.command('guest-get-devices').catch((e: unknown) => e);
    expect(disabled).toBeInstanceOf(AgentCommandNotSupportedError);
    expect(disabled).toMatchObject({ why: 'disabled' });
    // the escape hatch passes through whatever the agent answers
    expect(await agent.command('guest-get-timezone')).toHaveProperty('offset');
  });

  it('rejects bad input before sending anything', async () => {
    const agent = guest.agent();
    await expect(agent.command('Not A Command')).rejects.toThrow(/command name/);
    await expect(agent.readFile('relative/path')).rejects.toThrow(/absolute/);
    await expect(agent.setUserPassword('root', '')).rejects.toThrow(/non-empty/);
    await expect(agent.exec('/bin/true', [], { timeoutMs: -1 })).rejects.toThrow(/timeoutMs/);
    await expect(agent.shutdown({ mode: 'sideways' as 'halt' })).rejects.toThrow(/mode/);
  });
});

describe("libvirt's own agent-backed calls on the test guest", () => {
  // libqemu's generated bindings of these calls come from the libvirt API layer; virsh makes the same
  // calls, so this proves the test guest serves what they need (NIC addresses, fs info, freeze, passwords).
  const virsh = async (...args: string[]) => (await execFileP('virsh', ['-c', lv.uri, ...args], { timeout: 60_000 })).stdout;

  it('interface addresses from the agent, guest info, fs info, fs freeze/thaw and set-user-password', async () => {
    expect(await virsh('domifaddr', guest.name, '--source', 'agent')).toMatch(/eth0\s+\S+\s+ipv4\s+10\.0\.2\.15\/24/);
    const info = await virsh('guestinfo', guest.name, '--os', '--hostname', '--filesystem');
    expect(info).toMatch(/os\.id\s*:\s*libqemu-test-guest/);
    expect(info).toMatch(/hostname\s*:\s*libqemu-guest/);
    expect(info).toMatch(/fs\.\d+\.mountpoint\s*:\s*\/mnt\/scratch/);
    expect(await virsh('domfsinfo', guest.name)).toMatch(/\/mnt\/scratch\s+vda\s+ext4/);
    expect(await virsh('domfsfreeze', guest.name)).toMatch(/Froze 1 filesystem/);
    expect(await virsh('domfsthaw', guest.name)).toMatch(/Thawed 1 filesystem/);
    await virsh('set-user-password', guest.name, 'root', 'via-libvirt');
    expect((await guest.agent().readFile('/etc/shadow')).toString()).toMatch(/^root:\$6\$/m);
  });
  it('the same through the generated libvirt calls: interfaceAddresses(agent), getGuestInfo, getFSInfo, fsFreeze/fsThaw, setUserPassword', async () => {
    const conn = await Connection.open(lv.uri);
    try {
      const dom = await conn.lookupDomain(guest.name);
      const ifaces = await dom.interfaceAddresses(VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT);
      expect(JSON.stringify(ifaces)).toContain('10.0.2.15');
      const info = await dom.getGuestInfo(VIR_DOMAIN_GUEST_INFO_OS | VIR_DOMAIN_GUEST_INFO_HOSTNAME | VIR_DOMAIN_GUEST_INFO_FILESYSTEM);
      expect(info).toMatchObject({ 'os.id': 'libqemu-test-guest', hostname: 'libqemu-guest' });
      expect(Object.entries(info).some(([k, v]) => /^fs\.\d+\.mountpoint$/.test(k) && v === '/mnt/scratch')).toBe(true);
      expect(JSON.stringify(await dom.getFSInfo())).toContain('/mnt/scratch');
      expect(await dom.fsFreeze([])).toBe(1);
      expect(await dom.fsThaw([])).toBe(1);
      await dom.setUserPassword('root', 'via-generated');
      expect((await guest.agent().readFile('/etc/shadow')).toString()).toMatch(/^root:\$6\$/m);
    } finally {
      await conn.close();
    }
  });
});


describe('agent lifecycle', () => {
  it('a reboot through the agent: disconnected, then connected again, and the agent answers', async () => {
    const before = (await guest.agent().exec('/bin/cat', ['/proc/sys/kernel/random/boot_id'])).stdout;
    const lifecycle = await guest.agent().lifecycle();
    await guest.reboot({ mode: 'agent' });
    await nextEvent(events, isAgent('disconnected'));
    await nextEvent(events, isAgent('connected'));
    // the agent's own lifecycle stream saw the same
    const states: string[] = [];
    for await (const e of lifecycle) {
      states.push(e.state);
      if (e.state === 'connected') break;
    }
    expect(states).toEqual(['disconnected', 'connected']);
    await guest.agent().waitReady({ timeoutMs: 60_000 });
    const after = (await guest.agent().exec('/bin/cat', ['/proc/sys/kernel/random/boot_id'])).stdout;
    expect(after).not.toBe(before);
  });

  it('a stopped agent times out typed while the Hypervisor keeps answering; a killed one is reported unavailable', async () => {
    const agent = guest.agent();
    // SIGSTOP: the channel stays open, nothing answers
    await agent.exec('/bin/sh', ['-c', '(sleep 0.3; kill -STOP $(pidof qemu-ga)) >/dev/null 2>&1 &']);
    await new Promise((r) => setTimeout(r, 1000));
    let agentSettled = false;
    const hung = agent.ping({ timeoutMs: 3000 }).then(
      () => undefined,
      (e: unknown) => e,
    ).finally(() => (agentSettled = true));
    // the agent call holds only the agent's own connection: the Hypervisor's calls go through meanwhile
    const state = await guest.state();
    const list = await hv.guests();
    expect(state.state).toBe('running');
    expect(list.map((g) => g.name)).toContain(guest.name);
    expect(agentSettled).toBe(false);
    const err = await hung;
    expect(err).toBeInstanceOf(AgentTimeoutError);
    expect(err).toBeInstanceOf(AgentUnavailableError);

    // the stopped agent cannot be asked to do anything: a hard reset brings up a fresh one, killed from inside
    await guest.reset();
    await nextEvent(events, isAgent('disconnected'));
    await nextEvent(events, isAgent('connected'));
    await guest.agent().waitReady({ timeoutMs: 60_000 });
    await guest.agent().exec('/bin/sh', ['-c', '(sleep 0.3; kill -9 $(pidof qemu-ga)) >/dev/null 2>&1 &']);
    await nextEvent(events, isAgent('disconnected'));
    const gone = await guest.agent().ping({ timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(gone, booted.files.console()).toBeInstanceOf(AgentUnavailableError);
    expect((gone as AgentUnavailableError).reason).toMatch(/not-connected|timeout|disconnected/);
    expect((await guest.state()).state).toBe('running');
    // with no agent coming back, waitReady ends by its timeout or its signal, typed
    const late = await guest.agent().waitReady({ timeoutMs: 500 }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(AgentTimeoutError);
    const aborted = await guest.agent().waitReady({ timeoutMs: 60_000, signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect((aborted as Error).name).toBe('TimeoutError');
  });
});
