/**
 * `libqemu screenshot GUEST [FILE] [--screen N]`: the guest's display to a file through
 * guest.screenshot(), like virsh screenshot (same default file name: GUEST-YYYY-MM-DD-HH:MM:SS.png).
 */
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { action, type CliCommandModule } from '../command.js';
import { UsageError } from '../exit-codes.js';

const EXTENSIONS: Record<string, string> = { 'image/png': '.png', 'image/x-portable-pixmap': '.ppm' };

/** virsh's name for a screenshot file: the guest's name and the local time. */
function defaultFileName(guest: string, mimeType: string, now = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}-${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())}`;
  return `${guest}-${stamp}${EXTENSIONS[mimeType] ?? ''}`;
}

export const screenshotCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('screenshot')
      .description("save the guest's display as an image (PNG, or PPM on older QEMU), like virsh screenshot")
      .argument('<guest>', 'guest name or UUID')
      .argument('[file]', 'where to write the image (default: GUEST-DATE.png in this directory)')
      .option('--file <path>', 'where to write the image (same as the second argument)')
      .option('--screen <n>', 'which display (0: the first)', '0')
      .addHelpText('after', '\nExamples:\n  libqemu screenshot web1\n  libqemu screenshot web1 --file shot.png --screen 0')
      .action(
        action(ctx, async (session, cmd, name: string, positional: string | undefined) => {
          const o = cmd.opts<{ file?: string; screen: string }>();
          if (positional !== undefined && o.file !== undefined && positional !== o.file) throw new UsageError('give the file once: as the second argument or with --file');
          if (!/^\d+$/.test(o.screen)) throw new UsageError(`--screen: ${JSON.stringify(o.screen)} is not a display number`, { hint: '0 is the first display' });
          const guest = await session.guest(name);
          const image = await guest.screenshot({ screen: Number(o.screen) });
          const file = positional ?? o.file ?? defaultFileName(guest.name, image.mimeType);
          try {
            await pipeline(image, createWriteStream(file));
          } catch (err) {
            await unlink(file).catch(() => undefined); // no half-written image
            throw err;
          }
          session.out.either(`Screenshot saved to ${file}, with type of ${image.mimeType}`, { guest: guest.name, file, mimeType: image.mimeType });
        }),
      );
  },
};
