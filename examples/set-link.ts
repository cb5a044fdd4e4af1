/**
 * `set_link`, the 2010 sketch's example wrapper (`qmp_set_link`): take a guest's NIC down and up
 * through QMP while libvirt keeps managing the guest. `hv.openQmp({ name })` is the sketch's
 * `qmp_context_new_by_name` (by `{ uuid }`, `{ fd }` or `{ stream }` works the same way).
 *
 *   npx tsx examples/set-link.ts [--uri URI --domain NAME] [--nic net0]
 */
import { withGuest } from './support/sandbox.js';

await withGuest(['nic'], async ({ hv, guest, flags }) => {
  const nic = typeof flags.nic === 'string' ? flags.nic : 'net0';
  const qmp = await hv.openQmp({ name: guest.name }); // auto: second monitor if reachable, else passthrough
  try {
    console.log(`QMP via ${qmp.route} to ${guest.name}`);
    const events = qmp.events({ names: ['NIC_RX_FILTER_CHANGED'] }); // any QEMU event works the same way
    await qmp.commands.setLink({ name: nic, up: false });
    console.log(`${nic}: link down`);
    await new Promise((r) => setTimeout(r, 500));
    await qmp.commands.setLink({ name: nic, up: true });
    console.log(`${nic}: link up`);
    await events.return();
    // A NIC that does not exist is QEMU's error, with its class:
    await qmp.commands.setLink({ name: 'no-such-nic', up: false }).catch((e: Error & { errorClass?: string }) => {
      console.log(`set_link on a missing NIC → ${e.errorClass}: ${e.message}`);
    });
  } finally {
    await qmp.close();
  }
});
