/** virsh's domain verbs: `list`, `dumpxml`, `define`, `undefine`, `reset`, same names and flags as virsh. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import { UsageError } from '../exit-codes.js';

/** virsh's words for libvirt's states. */
const VIRSH_STATE: Record<string, string> = { shutoff: 'shut off', nostate: 'no state', blocked: 'idle', pmsuspended: 'pmsuspended' };

export const virshDomainCommands: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('list')
      .description('list running guests like virsh list (--all: defined ones too); `guests` also shows QMP routes')
      .option('--all', 'also list inactive guests')
      .option('--inactive', 'list only inactive guests')
      .option('--name', 'print only the names')
      .addHelpText('after', '\nExamples:\n  libqemu list --all\n  libqemu --json list')
      .action(
        action(ctx, async (session, cmd) => {
          const o = cmd.opts<{ all?: boolean; inactive?: boolean; name?: boolean }>();
          const hv = await session.hypervisor();
          const domains = await hv.connection.listDomains({ active: !o.inactive, inactive: Boolean(o.all || o.inactive) });
          const rows: { id: number | undefined; name: string; uuid: string; state: string }[] = [];
          for (const d of domains) {
            const [id, { state }] = await Promise.all([d.id(), d.state()]);
            rows.push({ id, name: d.name, uuid: d.uuid, state });
          }
          // virsh's order: running guests by id, then the others by name
          rows.sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || a.name.localeCompare(b.name));
          if (session.options.json) return void rows.forEach((r) => session.out.line(JSON.stringify(r)));
          if (o.name) return void rows.forEach((r) => session.out.line(r.name));
          const table = [['Id', 'Name', 'State'], ...rows.map((r) => [r.id === undefined ? '-' : String(r.id), r.name, VIRSH_STATE[r.state] ?? r.state])];
          const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
          for (const r of table) session.out.line(' ' + r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd());
        }),
      );

    program
      .command('dumpxml')
      .description("print a guest's domain XML (live when running)")
      .argument('[guest]', 'guest name or UUID (default: --domain)')
      .option('--inactive', 'the persistent definition instead of the live XML')
      .option('--security-info', 'include secrets such as passwords')
      .option('--migratable', 'the XML a migration target would get')
      .action(
        action(ctx, async (session, cmd, name: string | undefined) => {
          const o = cmd.opts<{ inactive?: boolean; securityInfo?: boolean; migratable?: boolean }>();
          const guest = await session.guest(name ?? session.options.domain);
          const xml = await guest.xml({ inactive: Boolean(o.inactive), secure: Boolean(o.securityInfo), migratable: Boolean(o.migratable) });
          session.out.either(xml.trimEnd(), { guest: guest.name, xml });
        }),
      );

    program
      .command('define')
      .description('define (or update) a persistent guest from a domain XML file')
      .argument('<file>', 'domain XML file')
      .addHelpText('after', '\nExample:\n  libqemu define web1.xml')
      .action(
        action(ctx, async (session, _cmd, file: string) => {
          const xml = await readFile(file, 'utf8').catch((err: unknown) => {
            throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'give the path of a domain XML file (libqemu dumpxml GUEST writes one)' });
          });
          const guest = await (await session.hypervisor()).defineGuest(xml);
          session.out.either(`Domain '${guest.name}' defined from ${file}`, { guest: guest.name, uuid: guest.uuid, action: 'define' });
        }),
      );

    for (const verb of [
      { name: 'undefine', what: "remove a guest's persistent definition (a running guest keeps running, transient)", run: (g: { undefine(): Promise<void> }) => g.undefine(), done: (n: string) => `Domain '${n}' has been undefined` },
      { name: 'reset', what: 'reset the guest at once, like the reset button', run: (g: { reset(): Promise<void> }) => g.reset(), done: (n: string) => `Domain '${n}' was reset` },
    ]) {
      program
        .command(verb.name)
        .description(`${verb.what} (through libvirt)`)
        .argument('[guest]', 'guest name or UUID (default: --domain)')
        .action(
          action(ctx, async (session, _cmd, name: string | undefined) => {
            const guest = await session.guest(name ?? session.options.domain);
            await verb.run(guest);
            session.out.either(verb.done(guest.name), { guest: guest.name, action: verb.name });
          }),
        );
    }
  },
};
