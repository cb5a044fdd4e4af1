import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDirtyKernel, dirtyCmdline, SWEEP_COUNTER_ADDRESS } from './guest/build.js';
import { startBareQemu, type BareQemu } from './helpers/bare-qemu.js';
import { waitFor } from '../harness/wait.js';

const MiB = 1024 * 1024;
const REGION = 4 * MiB;

describe('dirty.S, the memory-dirtying guest kernel', () => {
  let kernel: string;
  let qemu: BareQemu | undefined;

  beforeAll(async () => {
    kernel = await buildDirtyKernel();
    qemu = await startBareQemu({ kernel, append: dirtyCmdline({ mib: 8, spin: 0 }) });
  });
  afterAll(async () => {
    await qemu?.stop();
  });

  it('is a small world-readable ELF, cached by source hash', async () => {
    const st = await stat(kernel);
    expect(st.size).toBeLessThan(16 * 1024);
    expect(st.mode & 0o004).toBe(0o004);
    expect(await buildDirtyKernel()).toBe(kernel);
  });

  it('boots under a bare QEMU and keeps sweeping its region', async () => {
    const q = qemu!;
    // TCG on a loaded host boots and sweeps at its own pace: poll, do not sleep. The region's RAM is zero
    // until the kernel runs, and the kernel zeroes the counter before its first sweep, so once the first
    // page has been written the counter is a true count (low RAM may hold boot-time bytes before that).
    await waitFor('the first sweep to start', async () => (await q.readPhys32(REGION)) > 0, { timeoutMs: 20_000 });
    // Page 0 first, then the counter: the page holds at most the count at this moment, and the second
    // sweep completed after the counter was read started after it, writing a higher value.
    const firstPage = await q.readPhys32(REGION);
    const before = await q.readPhys32(SWEEP_COUNTER_ADDRESS);
    // Two more completed sweeps: at least one of them passed page 0 after it was read.
    await waitFor('two more sweeps', async () => (await q.readPhys32(SWEEP_COUNTER_ADDRESS)) >= before + 2, { timeoutMs: 20_000 });
    expect(await q.readPhys32(REGION)).toBeGreaterThan(firstPage);
    // mib=8 from the command line: the last page of the region is written, the page after it never.
    expect(await q.readPhys32(REGION + 8 * MiB - 4096)).toBeGreaterThan(0);
    expect(await q.readPhys32(REGION + 8 * MiB)).toBe(0);
  });

  it('dirties memory as QEMU measures it', async () => {
    const q = qemu!;
    await q.execute('calc-dirty-rate', { 'calc-time': 1 });
    let result: { status?: string; 'dirty-rate'?: number } = {};
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      result = (await q.execute('query-dirty-rate')) as typeof result;
      if (result.status === 'measured') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(result.status).toBe('measured');
    expect(result['dirty-rate']).toBeGreaterThan(1); // MiB/s
  });
});
