/**
 * `libqemu console GUEST`: the guest's serial console on this terminal, like virsh console. Ctrl-]
 * (or the end of stdin) hangs up; the guest keeps running.
 */
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';

/** virsh's escape character, Ctrl-]. */
const ESCAPE = 0x1d;

export const consoleCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('console')
      .description("attach to the guest's serial console (Ctrl-] to leave)")
      .argument('[guest]', 'guest name or UUID (default: --domain)')
      .option('--devname <alias>', "the console or serial device alias, e.g. 'serial0'")
      .option('--force', 'take the console over from another client')
      .addHelpText('after', '\nExample:\n  libqemu console web1')
      .action(
        action(ctx, async (session, cmd, name: string | undefined) => {
          const o = cmd.opts<{ devname?: string; force?: boolean }>();
          const guest = await session.guest(name ?? session.options.domain);
          const con = await guest.console({ ...(o.devname === undefined ? {} : { device: o.devname }), force: Boolean(o.force) });
          ctx.io.stderr.write(`Connected to domain '${guest.name}'\nEscape character is ^]\n`);
          const stdin = ctx.stdin as NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
          if (stdin.isTTY) stdin.setRawMode?.(true);
          await new Promise<void>((resolve, reject) => {
            const leave = (): void => {
              stdin.removeListener('data', onInput);
              stdin.removeListener('end', leave);
              con.removeListener('data', onOutput);
              stdin.pause();
              con.destroy();
              resolve();
            };
            const onInput = (chunk: Buffer | string): void => {
              const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
              const at = bytes.indexOf(ESCAPE);
              if (at > 0) con.write(bytes.subarray(0, at));
              if (at >= 0) return leave();
              con.write(bytes);
            };
            const onOutput = (chunk: Buffer): void => void ctx.io.stdout.write(chunk);
            stdin.on('data', onInput);
            stdin.on('end', leave);
            con.on('data', onOutput);
            con.on('end', leave);
            con.on('error', reject);
          });
          if (stdin.isTTY) stdin.setRawMode?.(false);
          await new Promise((r) => (con.closed ? r(undefined) : con.once('close', r)));
        }),
      );
  },
};
