/** virsh's `attach-device`, `detach-device`, `update-device` and `domstats`, through guest.attachDevice()/detachDevice()/updateDevice()/stats(). */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Guest, GuestChangeOptions } from '../../hybrid/index.js';
import { action, type CliCommandModule } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { affect, affectOptions, type AffectFlags } from '../virsh-affect.js';

async function readDeviceXml(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((err: unknown) => {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'give the path of a file with one device element, e.g. <disk>…</disk>' });
  });
}

type DeviceVerbOptions = GuestChangeOptions & { force?: boolean };

/** Stats values as JSON can carry them (bigints as decimal strings). */
const jsonSafe = (stats: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

export const virshDeviceCommands: CliCommandModule = {
  register(program: Command, ctx) {
    for (const verb of [
      { name: 'attach-device', what: 'attach', done: 'Device attached successfully', run: (g: Guest, xml: string, o: DeviceVerbOptions) => g.attachDevice(xml, o) },
      { name: 'detach-device', what: 'detach', done: 'Device detached successfully', run: (g: Guest, xml: string, o: DeviceVerbOptions) => g.detachDevice(xml, o) },
      { name: 'update-device', what: 'change', done: 'Device updated successfully', run: (g: Guest, xml: string, o: DeviceVerbOptions) => g.updateDevice(xml, o) },
    ]) {
      const cmd = program
        .command(verb.name)
        .description(`${verb.what} a device described by an XML file (through libvirt, so its XML stays right)`)
        .argument('<guest>', 'guest name or UUID')
        .argument('<file>', 'XML file with one device element');
      affectOptions(cmd, { persistent: true });
      if (verb.name === 'update-device') cmd.option('--force', 'force the change, e.g. eject a CD-ROM whose tray the guest locked');
      const example = verb.name === 'update-device' ? 'cdrom.xml --live   (a new medium: the <disk> with its <target> and a new <source>)' : 'disk.xml --live --config';
      cmd.addHelpText('after', `\nExample:\n  libqemu ${verb.name} web1 ${example}`).action(
        action(ctx, async (session, c, name: string, file: string) => {
          const xml = await readDeviceXml(file);
          const guest = await session.guest(name);
          const flags = c.opts<AffectFlags & { force?: boolean }>();
          const where = await affect(guest, flags);
          await verb.run(guest, xml, flags.force ? { ...where, force: true } : where);
          session.out.either(verb.done, { guest: guest.name, action: verb.name, ...where, ...(flags.force ? { force: true } : {}) });
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
