/**
 * The libqemu call behind each libvirt function the ownership policy names "to use instead", so a
 * refused command tells the user what to call in libqemu, not only in C. `guest.*` is the facade
 * (src/hybrid/guest.ts), `hv.*` the Hypervisor, `domain.*` / `connection.*` / `snapshot.*` /
 * `checkpoint.*` the generated libvirt objects (`hv.connection`, `hv.connection.lookupDomain(name)`).
 * test/libvirt/policy-bindings.test.ts checks that every name here exists.
 */
export const LIBQEMU_CALLS: Readonly<Record<string, string>> = {
  virDomainAttachDeviceFlags: 'guest.attachDevice()',
  virDomainDetachDeviceFlags: 'guest.detachDevice()',
  virDomainUpdateDeviceFlags: 'guest.updateDevice()',
  virDomainSetMemoryFlags: 'guest.setMemory()',
  virDomainSnapshotCreateXML: 'guest.snapshots.create()',
  virDomainRevertToSnapshot: 'guest.snapshots.revert()',
  virDomainSnapshotDelete: 'guest.snapshots.delete()',
  virDomainDestroy: 'guest.destroy()',
  virDomainShutdown: 'guest.shutdown()',
  virDomainCreate: 'guest.start()',
  virDomainMigrate3: 'guest.migrate()',
  virDomainMigrateToURI3: 'guest.migrate()',
  virDomainDefineXML: 'hv.defineGuest()',
  virDomainAbortJob: 'domain.abortJob()',
  virDomainMigrateStartPostCopy: 'domain.migrateStartPostCopy()',
  virDomainAddIOThread: 'domain.addIOThread()',
  virDomainDelIOThread: 'domain.delIOThread()',
  virDomainBackupBegin: 'domain.backupBegin()',
  virDomainBlockCommit: 'domain.blockCommit()',
  virDomainBlockCopy: 'domain.blockCopy()',
  virDomainBlockPull: 'domain.blockPull()',
  virDomainBlockJobAbort: 'domain.blockJobAbort()',
  virDomainBlockJobSetSpeed: 'domain.blockJobSetSpeed()',
  virDomainBlockResize: 'domain.blockResize()',
  virDomainSetBlockIoTune: 'domain.setBlockIoTune()',
  virDomainSetBlockThreshold: 'domain.setBlockThreshold()',
  virDomainCoreDumpWithFormat: 'domain.coreDumpWithFormat()',
  virDomainQemuMonitorCommandWithFiles: 'domain.qemuMonitorCommandWithFiles()',
  virDomainCheckpointCreateXML: 'domain.checkpointCreateXML()',
  virDomainCheckpointDelete: 'checkpoint.delete()',
  virSecretDefineXML: 'connection.secretDefineXML()',
};

/** `instead` followed by the libqemu calls of the libvirt functions it names (each once, in order). */
export function withLibqemuCalls(instead: string): string {
  const calls = [...new Set([...instead.matchAll(/\bvir[A-Z]\w+/g)].map((m) => LIBQEMU_CALLS[m[0]]).filter((c): c is string => c !== undefined))];
  const missing = calls.filter((c) => !instead.includes(c));
  return missing.length === 0 ? instead : `${instead}; in libqemu: ${missing.join(', ')}`;
}
