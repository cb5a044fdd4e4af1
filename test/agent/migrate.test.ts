/**
 * Live migration of the running Linux test guest between two private libvirtds while a process in the
 * guest keeps writing memory: on the destination the same OS instance runs on, the writer is still
 * there, and the guest agent answers through the destination's libvirt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { linuxTestGuest } from '../../src/testing/index.js';
import { startPair, type Pair } from '../migration/helpers/pair.js';
import { waitFor } from '../harness/wait.js';
import { guestImage } from './helpers.js';

let pair: Pair;
let hvA: Hypervisor;
let hvB: Hypervisor;

beforeAll(async () => {
  pair = await startPair();
  hvA = await Hypervisor.connect(pair.a.daemon.uri, { monitorDir: pair.a.daemon.qmpDir });
  hvB = await Hypervisor.connect(pair.b.daemon.uri, { monitorDir: pair.b.daemon.qmpDir });
});

afterAll(async () => {
  await Promise.allSettled([hvA?.close(), hvB?.close()]);
  await pair?.stop();
});

describe('migrating the Linux guest', () => {
  it('moves while a guest process writes memory; the guest and its agent answer on the destination', async () => {
    const name = `lm${process.pid % 10000}`;
    const files = await linuxTestGuest({ name, dir: pair.a.daemon.base, owner: pair.a.daemon, image: await guestImage() });
    const guest = await hvA.createGuest(files.xml, { qmpSocket: true });
    let moved: Guest | undefined;
    try {
      const agent = guest.agent();
      await agent.waitReady({ timeoutMs: 60_000 });
      const bootId = (await agent.exec('/bin/cat', ['/proc/sys/kernel/random/boot_id'])).stdout;
      // a writer that keeps rewriting 4 MiB of non-zero guest RAM (tmpfs) until it is killed: copying a random
      // seed costs the guest's one vCPU little, so the agent still answers on a loaded host
      await agent.exec('/bin/sh', ['-c', 'dd if=/dev/urandom of=/tmp/seed bs=64k count=64 2>/dev/null; setsid sh -c "renice -n 19 -p \\$\\$ >/dev/null; while :; do cp /tmp/seed /tmp/churn; echo x >> /tmp/rounds; sleep 0.1; done" >/dev/null 2>&1 &']);
      const rounds = async () => (await agent.exec('/bin/sh', ['-c', 'cat /tmp/rounds 2>/dev/null | wc -l'])).stdout.trim();
      let roundsBefore = 0;
      await waitFor('the writer to get going', async () => (roundsBefore = Number(await rounds())) > 0, { timeoutMs: 30_000, intervalMs: 200 });

      const result = await guest.migrate(hvB, { timeoutMs: 150_000 });
      moved = result.guest;
      expect(moved).toBeDefined();
      expect((await moved!.state()).state).toBe('running');

      const there = moved!.agent();
      await there.waitReady({ timeoutMs: 120_000 });
      // the same OS instance (no reboot), and the writer kept running across the move
      expect((await there.exec('/bin/cat', ['/proc/sys/kernel/random/boot_id'])).stdout).toBe(bootId);
      const roundsAfter = async () => Number((await there.exec('/bin/sh', ['-c', 'wc -l < /tmp/rounds'])).stdout.trim());
      const first = await roundsAfter();
      expect(first).toBeGreaterThan(roundsBefore);
      // still writing on the destination
      await there.exec('/bin/sleep', ['1']);
      expect(await roundsAfter()).toBeGreaterThan(first);
      expect(await there.getHostName()).toBe('libqemu-guest');
    } finally {
      await moved?.destroy().catch(() => undefined);
      await guest.destroy().catch(() => undefined);
    }
  }, 240_000);
});
