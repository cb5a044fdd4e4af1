/** virsh's `setmem` and `setvcpus`, through guest.setMemory()/setVcpus(), with virsh's --live/--config/--current. */
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { parseKiB } from '../scaled-size.js';
import { affect, affectOptions, type AffectFlags } from '../virsh-affect.js';

function vcpuCount(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) {
    throw new UsageError(`setvcpus: ${JSON.stringify(text)} is not a vCPU count`, { hint: 'give a whole number ≥ 1, e.g. libqemu setvcpus web1 2 --live' });
  }
  return Number(text);
}

export const virshResourceCommands: CliCommandModule = {
  register(program: Command, ctx) {
    const setmem = program
      .command('setmem')
      .description("change the guest's current memory (a live change asks its balloon), like virsh setmem")
      .argument('<guest>', 'guest name or UUID')
      .argument('<size>', 'new memory size: KiB, or with a unit (512M, 1G, 1GiB, 1000MB)');
    affectOptions(setmem, { persistent: false })
      .addHelpText('after', '\nExamples:\n  libqemu setmem web1 512M --live\n  libqemu setmem web1 1G --config')
      .action(
        action(ctx, async (session, cmd, name: string, size: string) => {
          const kib = parseKiB(size, 'setmem');
          const guest = await session.guest(name);
          const where = await affect(guest, cmd.opts<AffectFlags>());
          await guest.setMemory(kib, where);
          // like virsh: quiet on success
          if (session.options.json) session.out.line(JSON.stringify({ guest: guest.name, action: 'setmem', kib, ...where }));
        }),
      );

    const setvcpus = program
      .command('setvcpus')
      .description('change the number of virtual CPUs (live: up to the maximum in <vcpu>), like virsh setvcpus')
      .argument('<guest>', 'guest name or UUID')
      .argument('<count>', 'number of vCPUs');
    affectOptions(setvcpus, { persistent: false })
      .addHelpText('after', "\nExample:\n  libqemu setvcpus web1 2 --live   (the guest's XML needs room: <vcpu current='1'>2</vcpu>)")
      .action(
        action(ctx, async (session, cmd, name: string, count: string) => {
          const n = vcpuCount(count);
          const guest = await session.guest(name);
          const where = await affect(guest, cmd.opts<AffectFlags>());
          await guest.setVcpus(n, where);
          if (session.options.json) session.out.line(JSON.stringify({ guest: guest.name, action: 'setvcpus', count: n, ...where }));
        }),
      );
  },
};
