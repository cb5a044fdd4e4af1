/**
 * guest.migrate(): the facade wired to the migration engine. The guest's own libvirt connection carries
 * job stats, abort and events (libvirt registrations are shared per connection); the migration call
 * gets a connection of its own; QMP goes through guest.qmp() (second monitor, else passthrough). On
 * success the result carries the Guest on the destination, when that is a Hypervisor.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type { Domain } from '../libvirt/domain.js';
import { startMigration, type MigrationJob, type MigrationResult } from '../migration/engine.js';
import { libvirtMigrationControl, libvirtMigrationSource } from '../migration/libvirt-ports.js';
import type { MigrateOptions } from '../migration/options.js';
import type { MigrationQmp } from '../migration/ports.js';

/** What guest.migrate() needs of a destination Hypervisor (`G`: the guest type it hands back). */
export interface GuestMigrationDestination<G> {
  readonly uri: string;
  readonly local: boolean;
  readonly monitorDir: string;
  readonly isOpen: boolean;
  prepareMonitorDir(dir: string): Promise<void>;
  guest(name: string): Promise<G>;
}

export interface GuestMigrationOutcome<G> extends MigrationResult {
  /** The guest on the destination (when the destination was given as a Hypervisor). */
  guest: G | undefined;
}

export interface GuestMigrationInput<G> {
  /** The guest's libvirt domain on the source. */
  domain: Domain;
  /** The source hypervisor's URI. */
  sourceUri: string;
  destination: GuestMigrationDestination<G> | string;
  options?: MigrateOptions | undefined;
  /** The guest's QMP client (undefined when no route is usable). */
  qmp: () => Promise<MigrationQmp | undefined>;
}

/** Starts migrating a guest; see Guest.migrate. */
export function migrateGuest<G>(input: GuestMigrationInput<G>): MigrationJob<GuestMigrationOutcome<G>> {
  const { domain, destination } = input;
  if (isHypervisorLike(destination)) {
    if (destination.uri === input.sourceUri) {
      throw new InvalidArgumentError(`guest '${domain.name}' is already on ${input.sourceUri}`, { hint: 'migrate to another libvirtd (another host, or another private daemon)' });
    }
    if (!destination.isOpen) throw new InvalidArgumentError('the destination Hypervisor is closed', { hint: 'connect it again with Hypervisor.connect(uri)' });
  } else if (typeof destination !== 'string') {
    throw new InvalidArgumentError('guest.migrate: destination must be a Hypervisor or a libvirt URI', { hint: 'e.g. guest.migrate(await Hypervisor.connect(uri)) or guest.migrate("qemu+ssh://host/system")' });
  }
  const hypervisor = isHypervisorLike(destination) ? destination : undefined;
  return startMigration<GuestMigrationOutcome<G>>({
    source: libvirtMigrationSource(domain),
    control: libvirtMigrationControl(domain),
    // QEMU's own view (MIGRATION/MIGRATION_PASS, query-migrate) and the parameters libvirt lacks.
    qmp: input.qmp,
    ownsQmp: true,
    // The moved monitor lands in the destination hypervisor's directory: make sure it exists, private.
    prepare: async () => {
      if (hypervisor?.local) await hypervisor.prepareMonitorDir(hypervisor.monitorDir);
    },
    destination: hypervisor ? { uri: hypervisor.uri, monitorDir: hypervisor.monitorDir } : (destination as string),
    options: input.options ?? {},
    // The source side has been told already: guest.events() readers got libvirt's 'stopped'/'migrated'
    // and the 'qmp-disconnected' notice, and the source QEMU closed its monitor. The Guest object stays
    // usable (it follows the guest if it comes back).
    finish: async (result) => ({ ...result, guest: hypervisor ? await hypervisor.guest(result.name) : undefined }),
  });
}

function isHypervisorLike<G>(d: GuestMigrationDestination<G> | string): d is GuestMigrationDestination<G> {
  return typeof d === 'object' && d !== null && typeof d.uri === 'string' && typeof d.guest === 'function' && typeof d.prepareMonitorDir === 'function';
}
