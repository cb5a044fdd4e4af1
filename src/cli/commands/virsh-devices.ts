/** virsh's `attach-device`, `detach-device` and `domstats`, through guest.attachDevice()/detachDevice()/stats(). */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Guest, GuestChangeOptions } from '../../hybrid/index.js';
import { action, type CliCommandModule } from '../command.js';
import { UsageError } from '../exit-codes.js';

interface AffectFlags {
  live?: boolean;
  config?: boolean;
  persistent?: boolean;
  current?: boolean;
}

/** virsh's meaning of --live/--config/--persistent/--current; none of them = --current (the running guest, else its definition). */
async function affect(guest: Guest, o: AffectFlags): Promise<GuestChangeOptions> {
  if (o.current && (o.live || o.config || o.persistent)) throw new UsageError('--current cannot be combined with --live, --config or --persistent');
  const running = await guest.isRunning();
  if (o.persistent) return { live: running, config: true };
  if (o.live || o.config) return { live: Boolean(o.live), config: Boolean(o.config) };
  return { live: running, config: !running };
}

async function readDeviceXml(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((err: unknown) => {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'give the path of a file with one device element, e.g. <disk>…</disk>' });
  });
}

/** Stats values as JSON can carry them (bigints as decimal strings). */
const jsonSafe = (stats: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

export const virshDeviceCommands: CliCommandModule = {
  register(program: Command, ctx) {
    for (const verb of [
      { name: 'attach-device', done: 'Device attached successfully', run: (g: Guest, xml: string, o: GuestChangeOptions) => g.attachDevice(xml, o) },
      { name: 'detach-device', done: 'Device detached successfully', run: (g: Guest, xml: string, o: GuestChangeOptions) => g.detachDevice(xml, o) },
    ]) {
      program
        .command(verb.name)
        .description(`${verb.name.replace('-device', '')} a device described by an XML file (through libvirt, so its XML stays right)`)
        .argument('<guest>', 'guest name or UUID')
        .argument('<file>', 'XML file with one device element')
        .option('--live', 'affect the running guest')
        .option('--config', 'affect the persistent definition (next start)')
        .option('--persistent', 'affect the definition, and the running guest when it runs')
        .option('--current', 'affect the running guest when it runs, else the definition (the default)')
        .addHelpText('after', `\nExample:\n  libqemu ${verb.name} web1 disk.xml --live --config`)
        .action(
          action(ctx, async (session, cmd, name: string, file: string) => {
            const xml = await readDeviceXml(file);
            const guest = await session.guest(name);
            const where = await affect(guest, cmd.opts<AffectFlags>());
            await verb.run(guest, xml, where);
            session.out.either(verb.done, { guest: guest.name, action: verb.name, ...where });
          }),
        );
    }

    program
      .command('domstats')
      .description("libvirt's statistics of guests (all running guests when none is named), like virsh domstats")
      .argument('[guests...]', 'guest names or UUIDs')
      .addHelpText('after', '\nExamples:\n  libqemu domstats web1\n  libqemu --json domstats')
      .action(
        action(ctx, async (session, _cmd, names: string[]) => {
          const hv = await session.hypervisor();
          const chosen = names.length > 0 ? names : (await hv.guests()).filter((g) => g.routes.includes('passthrough')).map((g) => g.name);
          for (const n of chosen) {
            const guest = await hv.guest(n);
            const stats = await guest.stats();
            if (session.options.json) {
              session.out.line(JSON.stringify({ guest: guest.name, stats: jsonSafe(stats) }));
              continue;
            }
            session.out.line(`Domain: '${guest.name}'`);
            for (const [k, v] of Object.entries(stats)) session.out.line(`  ${k}=${String(typeof v === 'boolean' ? Number(v) : v)}`);
            session.out.line('');
          }
        }),
      );
  },
};
