/** `libqemu guests`: every guest of the libvirt connection, with its state and the QMP routes it offers. */
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';

export const guestsCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('guests')
      .description('list guests with their state and the QMP routes each offers (monitor = second QMP socket, passthrough = through libvirt)')
      .addHelpText('after', '\nExamples:\n  libqemu guests\n  libqemu -c qemu:///system --json guests')
      .action(
        action(ctx, async (session) => {
          const hv = await session.hypervisor();
          const guests = await hv.guests();
          if (session.options.json) {
            for (const g of guests) session.out.line(JSON.stringify(g));
            return;
          }
          const rows = [['NAME', 'STATE', 'QMP ROUTES', 'UUID'], ...guests.map((g) => [g.name, g.state, g.routes.join(',') || '-', g.uuid])];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          for (const r of rows) session.out.line(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
        }),
      );
  },
};
