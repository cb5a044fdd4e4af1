/** virsh's snapshot verbs: `snapshot-create`, `snapshot-list`, `snapshot-revert`, `snapshot-delete`, through guest.snapshots. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import { UsageError } from '../exit-codes.js';

export const virshSnapshotCommands: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('snapshot-create')
      .description('take a snapshot (from a <domainsnapshot> XML file, else with libvirt\'s defaults: all disks, plus memory when running)')
      .argument('<guest>', 'guest name or UUID')
      .argument('[file]', '<domainsnapshot> XML file')
      .addHelpText('after', '\nExamples:\n  libqemu snapshot-create web1\n  libqemu snapshot-create web1 snap.xml')
      .action(
        action(ctx, async (session, _cmd, name: string, file: string | undefined) => {
          const xml =
            file === undefined
              ? undefined
              : await readFile(file, 'utf8').catch((err: unknown) => {
                  throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'give a file with <domainsnapshot>…</domainsnapshot>, or no file' });
                });
          const guest = await session.guest(name);
          const snapshot = await guest.snapshots.create(xml);
          session.out.either(`Domain snapshot ${snapshot} created${file ? ` from '${file}'` : ''}`, { guest: guest.name, snapshot, action: 'snapshot-create' });
        }),
      );

    program
      .command('snapshot-list')
      .description("list a guest's snapshots, oldest first")
      .argument('<guest>', 'guest name or UUID')
      .option('--name', 'print only the names')
      .action(
        action(ctx, async (session, cmd, name: string) => {
          const guest = await session.guest(name);
          const list = await guest.snapshots.list();
          if (session.options.json) return void list.forEach((s) => session.out.line(JSON.stringify(s)));
          if (cmd.opts<{ name?: boolean }>().name) return void list.forEach((s) => session.out.line(s.name));
          const when = (t: number | undefined): string => (t === undefined ? '-' : new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000'));
          const table = [['Name', 'Creation Time', 'State'], ...list.map((s) => [s.name + (s.current ? ' (current)' : ''), when(s.creationTime), s.state ?? '-'])];
          const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
          for (const r of table) session.out.line(' ' + r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd());
        }),
      );

    for (const verb of [
      { name: 'snapshot-revert', what: 'bring the guest back to a snapshot', done: (s: string) => `Domain reverted to snapshot ${s}` },
      { name: 'snapshot-delete', what: 'delete a snapshot', done: (s: string) => `Domain snapshot ${s} deleted` },
    ]) {
      program
        .command(verb.name)
        .description(verb.what)
        .argument('<guest>', 'guest name or UUID')
        .argument('[snapshotname]', 'the snapshot (or --snapshotname)')
        .option('--snapshotname <name>', 'the snapshot, as virsh spells it')
        .action(
          action(ctx, async (session, cmd, name: string, positional: string | undefined) => {
            const snapshot = positional ?? cmd.opts<{ snapshotname?: string }>().snapshotname;
            if (!snapshot) throw new UsageError(`${verb.name}: which snapshot?`, { hint: `libqemu snapshot-list ${name} shows the names` });
            const guest = await session.guest(name);
            await (verb.name === 'snapshot-revert' ? guest.snapshots.revert(snapshot) : guest.snapshots.delete(snapshot));
            session.out.either(verb.done(snapshot), { guest: guest.name, snapshot, action: verb.name });
          }),
        );
    }
  },
};
