/**
 * Blocking libvirt calls made on the calling thread itself, for a worker thread that serves clients
 * and talks to libvirt with no hand-off in between (the passthrough proxy's thread): each call is the
 * same generated binding a lane runs, on a connection reserved for that thread
 * (ConnectionCore.reserveLane), and fails with a LibvirtError.
 *
 * Load it with loadThreadCalls() inside the worker, never on the main thread (a call blocks its
 * thread until libvirt answers). The process's exit gate counts every call, as the lanes' are counted,
 * so that Node never tears the thread down inside koffi.
 */
import { LibvirtError } from './errors.js';
import { enterGate, importNativeModules, leaveGate } from './protocol.js';
import type { ObjectRef } from './spec.js';

/** The calls a passthrough thread makes. Pointers are plain bigints (they cross threads as such). */
export interface ThreadCalls {
  /** virDomainLookupByUUIDString on `conn`: the domain's own reference, freed with freeDomain(). */
  lookupDomain(conn: bigint, uuid: string): bigint;
  /** virDomainQemuMonitorCommand: QEMU's reply text (libvirt's id in it). */
  monitorCommand(dom: bigint, command: string): string;
  /** virDomainQemuMonitorCommandWithFiles: the reply and any fds libvirt hands back (the caller closes them). */
  monitorCommandWithFiles(dom: bigint, command: string, fds: readonly number[]): { result: string; outfiles: number[] };
  /** virDomainFree. */
  freeDomain(dom: bigint): void;
}

/**
 * Loads koffi and libvirt on this thread (counted in the exit gate `gate`, the runtime's shared exit
 * gate). Resolves undefined when the process is already exiting: the thread must then end.
 */
export async function loadThreadCalls(gate: Int32Array): Promise<ThreadCalls | undefined> {
  await import('./interpreter.js'); // no koffi in it: loaded outside the gate
  const loaded = await importNativeModules(gate, () => import('./ops.js'));
  if (loaded === undefined) return undefined;
  const { ops, NativeFailure } = loaded;
  const run = <T>(operation: string, call: () => T): T => {
    const admitted = enterGate(gate);
    try {
      if (!admitted) throw LibvirtError.closed(operation, undefined, 'the process is exiting');
      return call();
    } catch (err) {
      if (err instanceof NativeFailure) throw new LibvirtError(err.data);
      throw err;
    } finally {
      leaveGate(gate);
    }
  };
  return {
    lookupDomain: (conn, uuid) => run('virDomainLookupByUUIDString', () => (ops.invoke('virDomainLookupByUUIDString', [conn, uuid]) as ObjectRef).ptr),
    monitorCommand: (dom, command) => run('virDomainQemuMonitorCommand', () => ops.invoke('virDomainQemuMonitorCommand', [dom, command, 0]) as string),
    monitorCommandWithFiles: (dom, command, fds) =>
      run('virDomainQemuMonitorCommandWithFiles', () => ops.invoke('virDomainQemuMonitorCommandWithFiles', [dom, command, [...fds], 0]) as { result: string; outfiles: number[] }),
    freeDomain: (dom) => run('virDomainFree', () => ops.release('Domain', dom)),
  };
}
