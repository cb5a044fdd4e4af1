/**
 * guest.console() and guest.screenshot(): libvirt streams (virDomainOpenConsole, virDomainScreenshot)
 * as Node streams. The libvirt stream is non-blocking, so a quiet console never holds the connection's
 * worker (see src/libvirt/stream-core.ts).
 */
import { Duplex, type Readable } from 'node:stream';
import { InvalidArgumentError } from '../common/errors.js';
import { virDomainConsoleFlags } from '../generated/libvirt/enums.js';
import type { Stream } from '../generated/libvirt/classes.js';
import type { StreamIoOptions } from '../libvirt/stream-core.js';
import type { GuestDomain } from './guest-context.js';

export interface GuestConsoleOptions extends StreamIoOptions {
  /** The console or serial device alias (e.g. 'serial0', 'console1'); default: the first console. */
  device?: string;
  /** Take the console over from another client that holds it (VIR_DOMAIN_CONSOLE_FORCE). */
  force?: boolean;
}

export interface ConsoleTarget {
  name: string;
  domain: Pick<GuestDomain, 'openConsole' | 'screenshot'>;
  /** A new non-blocking libvirt stream on the guest's connection. */
  openStream(): Promise<Stream>;
}

/** A screenshot's image data, with the MIME type libvirt reports (libvirt 9 + QEMU 7.2: image/png; older: image/x-portable-pixmap). */
export type GuestScreenshot = Readable & { readonly mimeType: string };

/**
 * The guest's serial console as a Duplex: what the guest writes arrives as data, what you write is
 * typed into it. `destroy()` it to let go of the console (another client may then open it).
 */
export async function openGuestConsole(target: ConsoleTarget, options: GuestConsoleOptions = {}): Promise<Duplex> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('console options must be an object');
  const { device, force, ...io } = options;
  if (device !== undefined && (typeof device !== 'string' || device === '')) {
    throw new InvalidArgumentError(`console device must be a device alias, got ${JSON.stringify(device)}`, { hint: "e.g. 'serial0' (see <alias name=…> in guest.xml()), or leave it out for the first console" });
  }
  const stream = await target.openStream();
  await target.domain.openConsole(device ?? null, stream, force ? virDomainConsoleFlags.VIR_DOMAIN_CONSOLE_FORCE : virDomainConsoleFlags.VIR_DOMAIN_CONSOLE_SAFE);
  return consoleDuplex(stream, io);
}

/**
 * One Duplex over the stream's reading and writing halves. Unlike Duplex.from(), destroy() without an
 * error lets go of the console quietly: hanging up is the normal way to leave a console.
 */
function consoleDuplex(stream: Stream, io: StreamIoOptions): Duplex {
  const readable = stream.toReadable(io);
  const writable = stream.toWritable(io);
  const duplex = new Duplex({
    read: () => void readable.resume(),
    write: (chunk: Buffer, _enc, cb) => void writable.write(chunk, (err) => cb(err ?? null)),
    final: (cb) => void writable.end(() => cb()),
    destroy: (err, cb) => {
      const closed = [readable, writable].map((s) => new Promise((r) => (s.closed ? r(undefined) : s.once('close', r))));
      readable.destroy();
      writable.destroy();
      void Promise.all(closed).then(() => cb(err));
    },
  });
  readable.on('data', (chunk: Buffer) => duplex.push(chunk) || readable.pause());
  readable.on('end', () => duplex.push(null));
  readable.on('error', (err) => duplex.destroy(err));
  writable.on('error', (err) => duplex.destroy(err));
  return duplex;
}

/** A screenshot of display `screen` (0: the first) as a Readable of the image QEMU writes (PNG or PPM). */
export async function takeScreenshot(target: ConsoleTarget, options: { screen?: number } & StreamIoOptions = {}): Promise<GuestScreenshot> {
  const { screen = 0, ...io } = options;
  if (!Number.isInteger(screen) || screen < 0) throw new InvalidArgumentError(`screenshot screen must be a display index ≥ 0, got ${String(screen)}`);
  const stream = await target.openStream();
  const mimeType = await target.domain.screenshot(stream, screen, 0);
  return Object.assign(stream.toReadable(io), { mimeType });
}
