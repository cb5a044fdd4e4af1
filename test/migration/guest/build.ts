/**
 * Builds the memory-dirtying multiboot kernel (dirty.S) with binutils at test time. The result is cached
 * by the source's hash in a world-readable directory, because the guest's QEMU runs as uid 65534 and
 * loads the same path on both sides of a migration. Build output never goes into the repository.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sourcePath = join(dirname(fileURLToPath(import.meta.url)), 'dirty.S');

export interface DirtyKernelOptions {
  /** Where built kernels are cached; defaults to `$TMPDIR/libqemu-cache`. */
  cacheDir?: string;
}

/** Returns the path of dirty.elf, assembling and linking it first if this source has not been built yet. */
export async function buildDirtyKernel(options: DirtyKernelOptions = {}): Promise<string> {
  const source = await readFile(sourcePath);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const cacheDir = options.cacheDir ?? join(tmpdir(), 'libqemu-cache');
  const target = join(cacheDir, `dirty-${hash}.elf`);
  if (await exists(target)) return target;

  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  await chmod(cacheDir, 0o755);
  // Build in a private scratch dir and rename into place: parallel test workers may race here.
  const scratch = await mkdtemp(join(cacheDir, '.build-'));
  try {
    const obj = join(scratch, 'dirty.o');
    const elf = join(scratch, 'dirty.elf');
    try {
      await run('as', ['--32', sourcePath, '-o', obj]);
      await run('ld', ['-m', 'elf_i386', '-Ttext=0x100000', '-e', '_start', obj, '-o', elf]);
    } catch (err) {
      throw new Error(`building the dirty guest kernel failed (are binutils installed? scripts/host-setup.sh installs them): ${String(err)}`);
    }
    await chmod(elf, 0o644);
    await rename(elf, target);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return target;
}

/** The kernel command line understood by dirty.S. */
export function dirtyCmdline(options: { mib?: number; spin?: number } = {}): string {
  return `mib=${options.mib ?? 16} spin=${options.spin ?? 0}`;
}

/** Physical address of the guest's sweep counter (a little-endian u32). */
export const SWEEP_COUNTER_ADDRESS = 0x3ff000;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
