/**
 * guest.snapshots: libvirt's snapshots of one guest (virDomainSnapshotCreateXML, …ListAll…, Revert,
 * Delete), the calls the ownership policy names instead of QMP's snapshot-save/-load/-delete, so
 * libvirt keeps the snapshot metadata it restores from.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type { GuestDomain } from './guest-context.js';

export interface GuestSnapshotInfo {
  name: string;
  /** The guest's current snapshot (the one the next snapshot descends from). */
  current: boolean;
  /** libvirt's record of the guest's state when the snapshot was taken: 'running', 'shutoff', 'disk-snapshot'… */
  state: string | undefined;
  /** When it was taken (seconds since the epoch, as libvirt records it). */
  creationTime: number | undefined;
}

type SnapshotDomain = Pick<GuestDomain, 'snapshotCreateXML' | 'listAllSnapshots' | 'snapshotLookupByName'>;

function element(xml: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
}

function checkName(name: unknown, call: string): asserts name is string {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidArgumentError(`snapshots.${call} expects a snapshot name, got ${JSON.stringify(name)}`, { hint: 'guest.snapshots.list() shows the names' });
  }
}

export class GuestSnapshots {
  /** @internal use guest.snapshots. */
  constructor(private readonly domain: SnapshotDomain) {}

  /**
   * Takes a snapshot described by `<domainsnapshot>` XML (default: an empty one, libvirt names it and
   * snapshots every disk, plus memory when the guest runs). Internal snapshots need qcow2 disks.
   * Resolves to the snapshot's name.
   */
  async create(xml = '<domainsnapshot/>', options: { flags?: number } = {}): Promise<string> {
    if (typeof xml !== 'string' || !/^\s*<domainsnapshot[\s/>]/.test(xml)) {
      throw new InvalidArgumentError(`snapshots.create expects <domainsnapshot> XML, got ${JSON.stringify(String(xml).slice(0, 60))}`, {
        hint: "e.g. \"<domainsnapshot><name>before-upgrade</name></domainsnapshot>\", or no argument for libvirt's defaults",
      });
    }
    const flags = options.flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0) throw new InvalidArgumentError(`snapshots.create flags must be virDomainSnapshotCreateFlags, got ${String(flags)}`);
    return (await this.domain.snapshotCreateXML(xml, flags)).getName();
  }

  /** Every snapshot of the guest, oldest first. */
  async list(): Promise<GuestSnapshotInfo[]> {
    const out: GuestSnapshotInfo[] = [];
    for (const s of await this.domain.listAllSnapshots()) {
      const [name, current, xml] = await Promise.all([s.getName(), s.isCurrent(), s.getXMLDesc()]);
      const time = element(xml, 'creationTime');
      out.push({ name, current, state: element(xml, 'state'), creationTime: time === undefined ? undefined : Number(time) });
    }
    return out.sort((a, b) => (a.creationTime ?? 0) - (b.creationTime ?? 0) || a.name.localeCompare(b.name));
  }

  /** Brings the guest back to the snapshot (its disks, and its memory and run state when the snapshot has them). */
  async revert(name: string, options: { flags?: number } = {}): Promise<void> {
    checkName(name, 'revert');
    await (await this.domain.snapshotLookupByName(name)).revertToSnapshot(options.flags ?? 0);
  }

  /** Deletes the snapshot (its data and libvirt's metadata); its children are re-parented. */
  async delete(name: string, options: { flags?: number } = {}): Promise<void> {
    checkName(name, 'delete');
    await (await this.domain.snapshotLookupByName(name)).delete(options.flags ?? 0);
  }
}
