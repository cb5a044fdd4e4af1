/**
 * guest.stats(): libvirt's bulk statistics of one guest (virDomainListGetStats, the per-domain form
 * of virConnectGetAllDomainStats, the data of `virsh domstats`), as a plain object.
 */
import type { TypedParamsObject } from '../libvirt/object.js';

/** libvirt's statistics fields, e.g. `'state.state'`, `'cpu.time'`, `'balloon.current'`, `'block.0.name'`. */
export type GuestStats = TypedParamsObject;

export interface StatsSource {
  /** The records virDomainListGetStats returns for this one domain (the Hypervisor hands this in). */
  domainStats(): Promise<TypedParamsObject>;
}

export async function guestStats(source: StatsSource): Promise<GuestStats> {
  return { ...(await source.domainStats()) };
}
