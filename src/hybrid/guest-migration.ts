/**
 * guest.migrate(): the facade's Guest and Hypervisor wired to the engine. The guest's own libvirt
 * connection carries job stats, abort and events (libvirt registrations are shared per connection); the
 * migration call gets a connection of its own; QMP goes through guest.qmp() (second monitor, else
 * passthrough). On success the result carries the Guest on the destination, when that is a Hypervisor.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type { Guest } from './guest.js';
import { Hypervisor } from './hypervisor.js';
import { startMigration, type MigrationJob, type MigrationResult } from '../migration/engine.js';
import { libvirtMigrationControl, libvirtMigrationSource } from '../migration/libvirt-ports.js';
import type { MigrateOptions } from '../migration/options.js';
import type { MigrationQmp } from '../migration/ports.js';

export interface GuestMigrationResult extends MigrationResult {
  /** The guest on the destination (when the destination was given as a Hypervisor). */
  guest: Guest | undefined;
}

/** Starts migrating `guest` to `destination`; see Guest.migrate. */
export function migrateGuest(guest: Guest, destination: Hypervisor | string, options: MigrateOptions = {}): MigrationJob<GuestMigrationResult> {
  const source = guest.hypervisor;
  if (destination instanceof Hypervisor) {
    if (destination === source || destination.uri === source.uri) {
      throw new InvalidArgumentError(`guest '${guest.name}' is already on ${source.uri}`, { hint: 'migrate to another libvirtd (another host, or another private daemon)' });
    }
    if (!destination.isOpen) throw new InvalidArgumentError('the destination Hypervisor is closed', { hint: 'connect it again with Hypervisor.connect(uri)' });
  } else if (typeof destination !== 'string') {
    throw new InvalidArgumentError('guest.migrate: destination must be a Hypervisor or a libvirt URI', { hint: 'e.g. guest.migrate(await Hypervisor.connect(uri)) or guest.migrate("qemu+ssh://host/system")' });
  }
  const target = destination instanceof Hypervisor ? { uri: destination.uri, monitorDir: destination.monitorDir } : destination;
  const domain = guest.domain;
  return startMigration<GuestMigrationResult>({
    source: libvirtMigrationSource(domain),
    control: libvirtMigrationControl(domain),
    // QEMU's own view (MIGRATION/MIGRATION_PASS, query-migrate) and the parameters libvirt lacks.
    qmp: async (): Promise<MigrationQmp | undefined> => {
      try {
        return await guest.qmp({ timeoutMs: 10_000, validate: false }); // only well-known commands; supports() still reads the schema
      } catch {
        return undefined; // no route (not running, unreachable): libvirt's progress alone; qemuParameters then fail clearly
      }
    },
    ownsQmp: true,
    // The moved monitor lands in the destination hypervisor's directory: make sure it exists, private.
    prepare: async () => {
      if (destination instanceof Hypervisor && destination.local) await destination.prepareMonitorDir(destination.monitorDir);
    },
    destination: target,
    options,
    // The source side has been told already: guest.events() readers got libvirt's 'stopped'/'migrated'
    // and the 'qmp-disconnected' notice, and the source QEMU closed its monitor. The Guest object stays
    // usable (it follows the guest if it comes back).
    finish: async (result) => ({ ...result, guest: destination instanceof Hypervisor ? await destination.guest(result.name) : undefined }),
  });
}
