/**
 * Setup shared by the examples: either the libvirt and guest you name (`--uri URI --domain NAME`), or
 * a private, unprivileged libvirtd in a temp dir with one tiny TCG guest defined the way "other tools"
 * would (plain libvirt XML, no extra QMP monitor). Everything it started is removed on exit and Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../../src/testing/index.js';

export interface Sandbox {
  hv: Hypervisor;
  guest: Guest;
  /** Flags the example declared, as given. */
  flags: Record<string, string | boolean | undefined>;
}

/**
 * Runs `body` against a running guest, then cleans up what was started here. `extra` declares the
 * example's own string flags (besides --uri and --domain).
 */
export async function withGuest(extra: string[], body: (s: Sandbox) => Promise<void>): Promise<void> {
  const options: Record<string, { type: 'string' }> = { uri: { type: 'string' }, domain: { type: 'string' } };
  for (const f of extra) options[f] = { type: 'string' };
  const values = parseArgs({ options }).values as Record<string, string | undefined>;
  const cleanups: Array<() => Promise<unknown>> = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
    })());
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  process.once('SIGTERM', () => void cleanup().then(() => process.exit(143)));
  try {
    let hv: Hypervisor;
    let guest: Guest;
    if (typeof values.uri === 'string' && typeof values.domain === 'string') {
      hv = await Hypervisor.connect(values.uri);
      cleanups.push(() => hv.close());
      guest = await hv.guest(values.domain);
    } else {
      const lv = await startPrivateLibvirtd({ prefix: 'ex' });
      console.log(`(no --uri/--domain: a private libvirtd in ${lv.base} and a tiny guest, removed at the end)`);
      cleanups.push(() => lv.stop());
      hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {} });
      cleanups.push(() => hv.close());
      // Defined as any other tool would: plain libvirt, no libqemu monitor. A tiny TCG guest (no disk,
      // idles in SeaBIOS) with a user-mode e1000 NIC, alias net0.
      const dom = await hv.connection.createXML(tinyGuestXml({ name: 'example-guest', nic: {} }));
      guest = await hv.guest(dom.uuid);
      cleanups.push(() => guest.destroy());
    }
    await body({ hv, guest, flags: values });
  } catch (err) {
    const e = err as Error & { hint?: string };
    console.error(`failed: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
