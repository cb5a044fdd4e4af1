/** Booting the Linux test guest under a private libvirtd through the facade, for the agent tests. */
import type { Guest, GuestEvent, GuestEventStream, Hypervisor } from '../../src/hybrid/index.js';
import { buildLinuxGuest, linuxTestGuest, type LinuxGuestImage, type LinuxTestGuest, type PrivateLibvirtd } from '../../src/testing/index.js';
import { nextMatching } from '../harness/wait.js';

let image: Promise<LinuxGuestImage> | undefined;

/** The guest image, built once per test process (a cached build costs one apt-cache call). */
export function guestImage(): Promise<LinuxGuestImage> {
  image ??= buildLinuxGuest();
  return image;
}

export interface BootedGuest {
  guest: Guest;
  files: LinuxTestGuest;
  events: GuestEventStream;
  /** From start() to the first answered guest-ping (ms). */
  bootMs: number;
}

/**
 * Defines the Linux guest, subscribes to its events, starts it and waits until the agent answers.
 * The boot time is printed: it is measured, not asserted (shared machines are noisy).
 */
export async function bootLinuxGuest(hv: Hypervisor, lv: PrivateLibvirtd, name: string, options: { scratchDiskMiB?: number; nic?: boolean; qmpSocket?: boolean } = {}): Promise<BootedGuest> {
  const files = await linuxTestGuest({
    name,
    dir: lv.base,
    owner: lv,
    image: await guestImage(),
    ...(options.scratchDiskMiB ? { scratchDiskMiB: options.scratchDiskMiB } : {}),
    ...(options.nic ? { nic: true } : {}),
    ...(options.qmpSocket ? { qmpSocket: `${lv.qmpDir}/${name}.sock` } : {}),
  });
  const guest = await hv.defineGuest(files.xml);
  const events = guest.events({ qmp: false });
  await events.ready;
  const t0 = performance.now();
  await guest.start();
  await guest.agent().waitReady({ timeoutMs: 60_000 }).catch((err: unknown) => {
    throw new Error(`the Linux guest's agent did not come up; serial console:\n${files.console()}`, { cause: err });
  });
  const bootMs = performance.now() - t0;
  console.log(`[linux guest ${name}] start → agent ready: ${Math.round(bootMs)} ms (${files.console().match(/agent started \(([\d.]+) s\)/)?.[1] ?? '?'} s kernel uptime)`);
  return { guest, files, events, bootMs };
}

/** The next event matching `pred` (others are skipped), bounded so a missing event fails instead of hanging. */
export function nextEvent(stream: GuestEventStream, pred: (e: GuestEvent) => boolean, timeoutMs = 30_000): Promise<GuestEvent> {
  return nextMatching(stream, pred, { timeoutMs, what: 'a guest event' });
}

export const isAgent = (state: 'connected' | 'disconnected') => (e: GuestEvent) => e.kind === 'agent-lifecycle' && e.state === state;
