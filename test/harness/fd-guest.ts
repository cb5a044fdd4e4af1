/**
 * What the fd-passing tests on the passthrough route share: a private libvirtd (also listening on TCP), a
 * Hypervisor on its unix socket, a tiny running guest, and a 1 MiB raw image to pass as an fd.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';

export interface FdPassingGuest {
  lv: PrivateLibvirtd;
  hv: Hypervisor;
  guest: Guest;
  /** A private temp directory (removed by close()). */
  dir: string;
  /** A 1 MiB raw image in `dir`. */
  image: string;
  close(): Promise<void>;
}

export async function startFdPassingGuest(options: { prefix: string; name: string }): Promise<FdPassingGuest> {
  const lv = await startPrivateLibvirtd({ prefix: options.prefix, tcp: true });
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => undefined });
  const guest = await hv.createGuest(tinyGuestXml({ name: options.name }));
  const dir = mkdtempSync(join(tmpdir(), `lq-${options.prefix}-`));
  const image = join(dir, 'disk.raw');
  writeFileSync(image, Buffer.alloc(1024 * 1024));
  return {
    lv,
    hv,
    guest,
    dir,
    image,
    close: async () => {
      await hv.close();
      await lv.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
