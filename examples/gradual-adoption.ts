/**
 * Gradual adoption: a guest libvirt already manages (defined by virsh, virt-manager, OpenStack…, no
 * extra QMP socket) gets one QEMU feature libvirt lacks, through libvirt's own passthrough — no
 * redefinition, no restart. The feature here is `announce-self` (QEMU re-announces the guest's MAC
 * addresses with gratuitous ARPs, e.g. after a network reconfiguration); libvirt has no API for it.
 *
 *   npx tsx examples/gradual-adoption.ts [--uri qemu:///system --domain web1]
 */
import { withGuest } from './support/sandbox.js';

await withGuest([], async ({ guest }) => {
  console.log(`guest ${guest.name}: ${JSON.stringify(await guest.state())}`);

  // Passthrough works on any running domain, local or remote; libvirt serialises the commands.
  const qmp = await guest.qmp({ via: 'passthrough' });
  try {
    if (!(await qmp.supports('announce-self'))) {
      console.log(`this QEMU (${Object.values(qmp.greeting.version.qemu).join('.')}) has no announce-self`);
      return;
    }
    // Not libvirt-tracked state, so the ownership policy lets it pass; the arguments are checked
    // against this QEMU's own schema before anything is sent.
    await qmp.commands.announceSelf({ initial: 50, max: 550, rounds: 5, step: 50 });
    console.log('announce-self → ok: 5 rounds of self-announcements, 50 ms apart, growing by 50 ms');

    // libvirt noticed that the guest was touched outside its API, once:
    console.log(`libvirt's taint marks: ${(await guest.taint()).map((t) => t.flag).join(', ') || 'none'}`);
    console.log(`and libvirt still manages it as before: ${JSON.stringify(await guest.state())}`);
  } finally {
    await qmp.close();
  }
});
