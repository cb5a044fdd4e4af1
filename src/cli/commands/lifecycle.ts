/** `libqemu start|shutdown|destroy|suspend|resume|reboot [NAME]`: guest lifecycle, always through libvirt. */
import type { Command } from 'commander';
import type { Guest } from '../../hybrid/index.js';
import { action, type CliCommandModule } from '../command.js';

const VERBS: readonly { name: string; what: string; done: string; run(g: Guest): Promise<void> }[] = [
  { name: 'start', what: 'start a defined guest', done: 'started', run: (g) => g.start() },
  { name: 'shutdown', what: 'ask the guest OS to shut down (ACPI)', done: 'asked to shut down', run: (g) => g.shutdown() },
  { name: 'destroy', what: 'stop the guest at once (like pulling the plug)', done: 'destroyed', run: (g) => g.destroy() },
  { name: 'suspend', what: 'pause the guest\'s CPUs', done: 'suspended', run: (g) => g.suspend() },
  { name: 'resume', what: 'continue a paused guest', done: 'resumed', run: (g) => g.resume() },
  { name: 'reboot', what: 'ask the guest OS to reboot', done: 'asked to reboot', run: (g) => g.reboot() },
];

export const lifecycleCommands: CliCommandModule = {
  register(program: Command, ctx) {
    for (const verb of VERBS) {
      program
        .command(verb.name)
        .description(`${verb.what} (through libvirt)`)
        .argument('[guest]', 'guest name or UUID (default: --domain)')
        .addHelpText('after', `\nExample:\n  libqemu ${verb.name} web1`)
        .action(
          action(ctx, async (session, _cmd, name: string | undefined) => {
            const guest = await session.guest(name ?? session.options.domain);
            await verb.run(guest);
            const { state, reason } = await guest.state();
            session.out.either(`${guest.name}: ${verb.done} (now ${state}${reason ? `, ${reason}` : ''})`, { guest: guest.name, action: verb.name, state, reason });
          }),
        );
    }
  },
};
