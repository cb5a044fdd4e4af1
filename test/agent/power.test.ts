/**
 * guest.shutdown()/reboot() with libvirt's modes on the Linux test guest (which really powers off on the
 * ACPI power button and through qemu-ga), the lifecycle events that say so, and the typed failures on a
 * guest without an OS or without an agent channel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentUnavailableError } from '../../src/agent/index.js';
import { GuestShutdownTimeoutError, Hypervisor, type GuestEvent } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { bootLinuxGuest, isAgent, nextEvent } from './helpers.js';

let lv: PrivateLibvirtd;
let hv: Hypervisor;
let seq = 0;
const name = (tag: string) => `pw${process.pid % 10000}-${tag}-${++seq}`;

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'pwr' });
  hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir });
});

afterAll(async () => {
  await hv?.close();
  await lv?.stop();
});

const isLifecycle = (event: string, detail?: string) => (e: GuestEvent) => e.kind === 'lifecycle' && e.event === event && (detail === undefined || e.detail === detail);

describe('ACPI', () => {
  it('reboot through the power button comes back with the agent reconnected; shutdown through it powers off', async () => {
    const { guest, events } = await bootLinuxGuest(hv, lv, name('acpi'));
    try {
      await nextEvent(events, isAgent('connected'));
      await guest.reboot({ mode: 'acpi' });
      await nextEvent(events, (e) => e.kind === 'reboot');
      await nextEvent(events, isAgent('disconnected'));
      await nextEvent(events, isAgent('connected'));
      await guest.agent().waitReady({ timeoutMs: 60_000 });

      await guest.shutdown({ mode: 'acpi', wait: true, timeoutMs: 60_000 });
      expect(await guest.state()).toEqual({ state: 'shutoff', reason: 'shutdown' });
      // the guest itself powered off (not a destroy), and libvirt said so
      expect(await nextEvent(events, isLifecycle('shutdown'))).toMatchObject({ detail: expect.stringMatching(/finished|guest/) });
      await nextEvent(events, isLifecycle('stopped', 'shutdown'));
    } finally {
      await events.return();
      await guest.destroy().catch(() => undefined);
    }
  });
});

describe('guest agent', () => {
  it('agent.shutdown({ mode: "reboot" }) reboots; guest.shutdown({ mode: "agent", wait }) powers off', async () => {
    const { guest, events } = await bootLinuxGuest(hv, lv, name('agent'));
    try {
      await nextEvent(events, isAgent('connected'));
      await guest.agent().shutdown({ mode: 'reboot' });
      await nextEvent(events, isAgent('disconnected'));
      await nextEvent(events, isAgent('connected'));
      await guest.agent().waitReady({ timeoutMs: 60_000 });
      expect((await guest.state()).state).toBe('running');

      await guest.shutdown({ mode: 'agent', wait: true, timeoutMs: 60_000 });
      expect((await guest.state()).state).toBe('shutoff');
      await nextEvent(events, isLifecycle('stopped', 'shutdown'));
    } finally {
      await events.return();
      await guest.destroy().catch(() => undefined);
    }
  });
});

describe('typed failures', () => {
  it('a guest without an OS ignores the power button: shutdown({ wait }) fails with GuestShutdownTimeoutError', async () => {
    const guest = await hv.createGuest(tinyGuestXml({ name: name('noos') }));
    try {
      const err = await guest.shutdown({ mode: 'acpi', wait: true, timeoutMs: 1500 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestShutdownTimeoutError);
      expect(err).toMatchObject({ guest: guest.name, state: 'running', timeoutMs: 1500 });
      expect((await guest.state()).state).toBe('running');
    } finally {
      await guest.destroy().catch(() => undefined);
    }
  });

  it('without an agent channel: agent calls, agent shutdown and waitReady fail at once as not-configured', async () => {
    const guest = await hv.createGuest(tinyGuestXml({ name: name('noagent') }));
    try {
      for (const attempt of [
        () => guest.agent().ping(),
        () => guest.agent().waitReady({ timeoutMs: 30_000 }),
        () => guest.shutdown({ mode: 'agent' }),
        () => guest.reboot({ mode: 'agent' }),
      ]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AgentUnavailableError);
        expect((err as AgentUnavailableError).reason).toBe('not-configured');
      }
    } finally {
      await guest.destroy().catch(() => undefined);
    }
  });

  it('rejects an unknown mode and a bad timeout before asking libvirt', async () => {
    const guest = await hv.createGuest(tinyGuestXml({ name: name('args') }));
    try {
      await expect(guest.shutdown({ mode: 'pull-the-plug' as 'acpi' })).rejects.toThrow(/mode must be/);
      await expect(guest.shutdown({ wait: true, timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
      await expect(guest.reboot({ mode: 'x' as 'acpi' })).rejects.toThrow(/mode must be/);
      expect((await guest.state()).state).toBe('running');
    } finally {
      await guest.destroy().catch(() => undefined);
    }
  });
});
