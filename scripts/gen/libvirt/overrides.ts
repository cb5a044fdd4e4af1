/**
 * What the libvirt generator does not derive by itself, one entry per C function, each with its reason.
 * Everything not listed here is classified and bound by the rules in scripts/gen-libvirt.ts.
 */

/** Functions deliberately not bound: reason shown in LIBVIRT_SKIPPED. */
export const SKIP: Record<string, string> = {
  // memory management the binding does itself
  virConnectRef: 'reference counting is the binding\'s job (objects are released when unreferenced or on close())',
  virDomainRef: 'reference counting is the binding\'s job',
  virInterfaceRef: 'reference counting is the binding\'s job',
  virNetworkRef: 'reference counting is the binding\'s job',
  virNetworkPortRef: 'reference counting is the binding\'s job',
  virNodeDeviceRef: 'reference counting is the binding\'s job',
  virSecretRef: 'reference counting is the binding\'s job',
  virNWFilterRef: 'reference counting is the binding\'s job',
  virNWFilterBindingRef: 'reference counting is the binding\'s job',
  virStoragePoolRef: 'reference counting is the binding\'s job',
  virStorageVolRef: 'reference counting is the binding\'s job',
  virStreamRef: 'reference counting is the binding\'s job',
  virDomainCheckpointRef: 'reference counting is the binding\'s job',
  virDomainSnapshotRef: 'reference counting is the binding\'s job',
  virDomainFree: 'called by the binding when a Domain is unreferenced or its connection closes',
  virInterfaceFree: 'called by the binding when the object is unreferenced or its connection closes',
  virNetworkFree: 'called by the binding when the object is unreferenced or its connection closes',
  virNetworkPortFree: 'called by the binding when the object is unreferenced or its connection closes',
  virNodeDeviceFree: 'called by the binding when the object is unreferenced or its connection closes',
  virSecretFree: 'called by the binding when the object is unreferenced or its connection closes',
  virNWFilterFree: 'called by the binding when the object is unreferenced or its connection closes',
  virNWFilterBindingFree: 'called by the binding when the object is unreferenced or its connection closes',
  virStoragePoolFree: 'called by the binding when the object is unreferenced or its connection closes',
  virStorageVolFree: 'called by the binding when the object is unreferenced or its connection closes',
  virStreamFree: 'called by the binding when the object is unreferenced or its connection closes',
  virDomainCheckpointFree: 'called by the binding when the object is unreferenced or its connection closes',
  virDomainSnapshotFree: 'called by the binding when the object is unreferenced or its connection closes',
  virNetworkDHCPLeaseFree: 'C-only: leases are returned as plain objects',
  virDomainStatsRecordListFree: 'called by the binding after copying the records out',
  virDomainFSInfoFree: 'C-only: the binding copies results out',
  virDomainIOThreadInfoFree: 'C-only: the binding copies results out',
  virDomainInterfaceFree: 'C-only: the binding copies results out',
  virFreeError: 'errors are copied into LibvirtError objects',
  // typed-parameter helpers the binding replaces with plain objects
  virTypedParamsAddBoolean: 'typed parameters are plain objects in the binding',
  virTypedParamsAddDouble: 'typed parameters are plain objects in the binding',
  virTypedParamsAddFromString: 'typed parameters are plain objects in the binding',
  virTypedParamsAddInt: 'typed parameters are plain objects in the binding',
  virTypedParamsAddLLong: 'typed parameters are plain objects in the binding',
  virTypedParamsAddString: 'typed parameters are plain objects in the binding',
  virTypedParamsAddStringList: 'typed parameters are plain objects in the binding',
  virTypedParamsAddUInt: 'typed parameters are plain objects in the binding',
  virTypedParamsAddULLong: 'typed parameters are plain objects in the binding',
  virTypedParamsClear: 'typed parameters are plain objects in the binding',
  virTypedParamsFree: 'typed parameters are plain objects in the binding',
  virTypedParamsGet: 'typed parameters are plain objects in the binding',
  virTypedParamsGetBoolean: 'typed parameters are plain objects in the binding',
  virTypedParamsGetDouble: 'typed parameters are plain objects in the binding',
  virTypedParamsGetInt: 'typed parameters are plain objects in the binding',
  virTypedParamsGetLLong: 'typed parameters are plain objects in the binding',
  virTypedParamsGetString: 'typed parameters are plain objects in the binding',
  virTypedParamsGetUInt: 'typed parameters are plain objects in the binding',
  virTypedParamsGetULLong: 'typed parameters are plain objects in the binding',
  // error plumbing: errors are read per call on the worker thread and thrown as LibvirtError
  virConnSetErrorFunc: 'a JS error handler hangs process exit; errors are thrown as LibvirtError',
  virSetErrorFunc: 'a JS error handler hangs process exit; the binding installs a C no-op handler',
  virConnCopyLastError: 'errors are thrown as LibvirtError',
  virCopyLastError: 'errors are thrown as LibvirtError',
  virDefaultErrorFunc: 'errors are thrown as LibvirtError',
  virResetError: 'errors are thrown as LibvirtError',
  // the event loop belongs to the binding's event worker
  virEventRegisterImpl: 'the binding runs libvirt\'s default event loop on its own thread',
  virEventRegisterDefaultImpl: 'done by the binding before the first connection opens',
  virEventRunDefaultImpl: 'the binding runs libvirt\'s default event loop on its own thread',
  virEventAddHandle: 'event-loop internals: the binding owns the loop',
  virEventUpdateHandle: 'event-loop internals: the binding owns the loop',
  virEventRemoveHandle: 'event-loop internals: the binding owns the loop',
  virEventAddTimeout: 'event-loop internals: the binding owns the loop',
  virEventUpdateTimeout: 'event-loop internals: the binding owns the loop',
  virEventRemoveTimeout: 'event-loop internals: the binding owns the loop',
  // opening connections: Connection.open() (needs the event loop first and a worker of its own)
  virConnectOpenAuth: 'interactive credential callbacks are not offered; use Connection.open() with a socket or TLS URI',
  virDomainGetCPUStats: 'fills a caller-sized matrix of typed parameters per CPU: not generated yet; getAllDomainStats() has the cpu.* totals',
  // file descriptors and callbacks that would run JavaScript on libvirt's threads
  virDomainQemuAttach: 'removed from libvirt (always fails)',
  virStreamEventAddCallback: 'runs JavaScript on libvirt\'s event thread; streams are read by the binding',
  virStreamEventUpdateCallback: 'runs JavaScript on libvirt\'s event thread; streams are read by the binding',
  virStreamEventRemoveCallback: 'runs JavaScript on libvirt\'s event thread; streams are read by the binding',
  virStreamRecvAll: 'takes a C sink callback; streams are read by the binding',
  virStreamSendAll: 'takes a C source callback',
  virStreamSparseRecvAll: 'takes C sink callbacks',
  virStreamSparseSendAll: 'takes C source callbacks',
};

/**
 * C functions served by a hand-written method of the same object (the method keeps the libqemu name and
 * signature users already have, and calls the generated binding underneath).
 */
export const HAND_WRITTEN: Record<string, { class: string; method: string; reason: string }> = {
  virConnectOpen: { class: 'Connection', method: 'open', reason: 'Connection.open() starts the event loop and a worker first' },
  virConnectOpenReadOnly: { class: 'Connection', method: 'open', reason: 'Connection.open(uri, { readOnly: true })' },
  virConnectClose: { class: 'Connection', method: 'close', reason: 'close() deregisters events and releases objects first' },
  virConnectDomainEventRegister: { class: 'Connection', method: 'domainEvents', reason: "libvirt's older lifecycle-only registration: domainEvents({ kinds: ['lifecycle'] }) delivers the same events" },
  virConnectDomainEventDeregister: { class: 'Connection', method: 'domainEvents', reason: 'deregistered when the iteration stops' },
  virConnectIsAlive: { class: 'Connection', method: 'isAlive', reason: 'answers false instead of failing on a closed connection' },
  virConnectRegisterCloseCallback: { class: 'Connection', method: 'on', reason: "the close callback lives in the event worker; it emits 'disconnected'" },
  virConnectUnregisterCloseCallback: { class: 'Connection', method: 'close', reason: 'unregistered by close()' },
  virConnectDomainEventRegisterAny: { class: 'Connection', method: 'domainEvents', reason: 'events are async iterables (every virDomainEventID)' },
  virConnectDomainEventDeregisterAny: { class: 'Connection', method: 'domainEvents', reason: 'deregistered when the iteration stops' },
  virConnectNetworkEventRegisterAny: { class: 'Connection', method: 'networkEvents', reason: 'events are async iterables' },
  virConnectNetworkEventDeregisterAny: { class: 'Connection', method: 'networkEvents', reason: 'deregistered when the iteration stops' },
  virConnectStoragePoolEventRegisterAny: { class: 'Connection', method: 'storagePoolEvents', reason: 'events are async iterables' },
  virConnectStoragePoolEventDeregisterAny: { class: 'Connection', method: 'storagePoolEvents', reason: 'deregistered when the iteration stops' },
  virConnectNodeDeviceEventRegisterAny: { class: 'Connection', method: 'nodeDeviceEvents', reason: 'events are async iterables' },
  virConnectNodeDeviceEventDeregisterAny: { class: 'Connection', method: 'nodeDeviceEvents', reason: 'deregistered when the iteration stops' },
  virConnectSecretEventRegisterAny: { class: 'Connection', method: 'secretEvents', reason: 'events are async iterables' },
  virConnectSecretEventDeregisterAny: { class: 'Connection', method: 'secretEvents', reason: 'deregistered when the iteration stops' },
  virConnectDomainQemuMonitorEventRegister: { class: 'Connection', method: 'qemuMonitorEvents', reason: 'events are async iterables' },
  virConnectDomainQemuMonitorEventDeregister: { class: 'Connection', method: 'qemuMonitorEvents', reason: 'deregistered when the iteration stops' },
};

/**
 * Generated methods whose name a hand-written method already uses with its own signature: the
 * hand-written one stays (it is built on this binding), the generated one is not emitted.
 */
export const HAND_NAMED: Record<string, string> = {
  virDomainShutdown: 'Domain.shutdown(options) predates the generated layer',
  virDomainDestroy: 'Domain.destroy(options) predates the generated layer',
  virDomainSuspend: 'Domain.suspend(options) predates the generated layer',
  virDomainResume: 'Domain.resume(options) predates the generated layer',
  virDomainReboot: 'Domain.reboot(options) predates the generated layer',
  virDomainReset: 'Domain.reset(options) predates the generated layer',
  virDomainUndefine: 'Domain.undefine(options) predates the generated layer',
  virDomainIsActive: 'Domain.isActive(options) predates the generated layer',
  virDomainIsPersistent: 'Domain.isPersistent(options) predates the generated layer',
  virDomainQemuMonitorCommand: 'Domain.qemuMonitorCommand() takes and returns parsed QMP',
  virDomainQemuAgentCommand: 'Domain.qemuAgentCommand() takes and returns parsed JSON',
  virDomainMigrateToURI3: 'Domain.migrateToURI3() takes typed-parameter entries',
  virDomainAbortJob: 'Domain.abortJob(options) predates the generated layer',
  virDomainMigrateSetMaxDowntime: 'Domain.migrateSetMaxDowntime(ms) predates the generated layer',
  virDomainMigrateGetMaxDowntime: 'Domain.migrateGetMaxDowntime() returns a number',
};

/** Method names that the C-derived rule would get wrong. */
export const RENAME: Record<string, string> = {
  // Connection.listDomains() (objects, active and inactive) predates it; libvirt-python's name for it
  virConnectListDomains: 'listDomainsID',
  virGetVersion: 'libvirtVersion',
  virInitialize: 'initialize',
  virDomainListGetStats: 'domainListGetStats',
};

/**
 * Functions with no object argument offered on Connection (they run on that connection's worker thread,
 * like every call): the module-level API has no thread of its own to run on.
 */
export const ON_CONNECTION = new Set([
  'virGetVersion',
  'virInitialize',
  'virDomainListGetStats',
  // the thread-local last error of the connection's worker thread: the previous call on this connection
  'virGetLastError',
  'virGetLastErrorCode',
  'virGetLastErrorDomain',
  'virGetLastErrorMessage',
  'virResetLastError',
  'virSaveLastError',
]);

/**
 * Functions returning a reference the caller does not own (their docs say not to free it): the binding
 * takes its own reference (virXRef) so the object lives like any other.
 */
export const BORROWED_RETURN = new Set(['virDomainSnapshotGetDomain', 'virDomainCheckpointGetDomain', 'virNetworkPortGetNetwork']);

/**
 * Pointer arguments that are arrays, although the XML types them like single out-parameters (its docs say
 * so only in prose): argument name → kind (see src/libvirt/spec.ts). Getting these wrong would let
 * libvirt write past a one-element buffer.
 */
export const ARRAY_ARGS: Record<string, Record<string, string>> = {
  // freeMems[maxCells], filled from startCell on
  virNodeGetCellsFreeMemory: { freeMems: 'ullsOutMax' },
  // pages[npages] in, counts[npages * cellCount] out
  virNodeGetFreePages: { npages: 'countBefore', pages: 'uintsInAfterCount', counts: 'ullsOutPages' },
  // pageSizes[npages], pageCounts[npages] in
  virNodeAllocPages: { npages: 'countBefore', pageSizes: 'uintsInAfterCount', pageCounts: 'ullsInAfterCount' },
};
