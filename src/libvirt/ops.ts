/**
 * The blocking libvirt calls, as run inside an executor worker thread. Each op decides failure by the
 * return value (-1 / NULL), then reads libvirt's thread-local error on this same thread, and frees
 * everything libvirt handed out before returning plain data. Only `import type` this from the main thread.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { loadNative, type CallbackPtr, type ConnectPtr, type DomainPtr, type MallocPtr, type Native, type TypedParamsPtr } from '../../native/libvirt.js';
import type { LibvirtErrorData } from './errors.js';
import { decodeTypedParams, encodeTypedParams, typedParamsToObject, type TypedParam } from './typed-params.js';

/** A domain handle plus what never changes about it, fetched in the same hop. */
export interface DomainRef {
  ptr: DomainPtr;
  name: string;
  uuid: string;
}

export interface RawDomainInfoData {
  state: number;
  maxMemKiB: number;
  memoryKiB: number;
  vcpus: number;
  cpuTimeNs: number;
}

/** Thrown inside the worker; posted to the main thread as data. */
export class NativeFailure extends Error {
  constructor(readonly data: LibvirtErrorData) {
    super(data.message);
  }
}

let native: Native | undefined;
function n(): Native {
  if (!native) {
    native = loadNative();
    native.api.virSetErrorFunc(null, native.noopErrorHandler);
  }
  return native;
}

function fail(operation: string): never {
  const e = n().lastError();
  throw new NativeFailure(
    e ? { code: e.code, domain: e.domain, message: e.message ?? 'unknown libvirt error', level: e.level, operation } : { code: 1, domain: 0, message: 'failed without setting an error', operation },
  );
}

function check(rc: number, operation: string): number {
  if (rc < 0) fail(operation);
  return rc;
}

function domainRef(ptr: DomainPtr | null, operation: string): DomainRef {
  if (!ptr) fail(operation);
  const { api } = n();
  const buf = Buffer.alloc(37);
  if (api.virDomainGetUUIDString(ptr, buf) < 0) {
    api.virDomainFree(ptr);
    fail('virDomainGetUUIDString');
  }
  const name = api.virDomainGetName(ptr);
  if (name === null) {
    api.virDomainFree(ptr);
    fail('virDomainGetName');
  }
  return { ptr, name, uuid: buf.toString('latin1', 0, 36) };
}

function socketFds(): Set<number> {
  const fds = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) fds.add(Number(fd));
    } catch {
      // closed meanwhile
    }
  }
  return fds;
}

function version(v: number): { major: number; minor: number; micro: number } {
  return { major: Math.floor(v / 1_000_000), minor: Math.floor(v / 1000) % 1000, micro: v % 1000 };
}

export const ops = {
  /**
   * Opens a connection. `fd` is the connection's socket when exactly one new socket appeared during the
   * open (opens are serialised by the main thread): the exit hook and call deadlines shut it down to
   * release a call stuck on a hung QEMU.
   */
  open(uri: string | null, readOnly: boolean): { conn: ConnectPtr; uri: string; fd: number | null } {
    const { api } = n();
    const before = socketFds();
    const conn = readOnly ? api.virConnectOpenReadOnly(uri) : api.virConnectOpen(uri);
    if (!conn) fail(readOnly ? 'virConnectOpenReadOnly' : 'virConnectOpen');
    const fresh = [...socketFds()].filter((fd) => !before.has(fd));
    // Keepalive detects a dead or frozen daemon (5 s × (3+1)); drivers without it (test://) just decline.
    if (api.virConnectSetKeepAlive(conn, 5, 3) < 0) api.virResetLastError();
    const resolved = api.virConnectGetURI(conn) ?? uri ?? '';
    // test:/// runs in this process and opens no socket: a socket that appeared meanwhile is someone else's.
    const ownsSocket = fresh.length === 1 && !resolved.startsWith('test:');
    return { conn, uri: resolved, fd: ownsSocket ? fresh[0]! : null };
  },
  /**
   * Registers the close callback (made in the event worker) with `connId` as its opaque value. Done here,
   * not in the event worker, which koffi relays the callback to: see ops.close. Returns false when the
   * driver has no close callbacks (test://).
   */
  registerCloseCallback(conn: ConnectPtr, cb: CallbackPtr, connId: number): boolean {
    const { api } = n();
    // No free callback (NULL): libvirt could call it on whichever thread deregisters.
    if (api.virConnectRegisterCloseCallback(conn, cb, BigInt(connId), null) < 0) {
      api.virResetLastError();
      return false;
    }
    return true;
  },
  /**
   * Unregisters the close callback, frees the given domain handles, then closes the connection (one hop,
   * after every queued call). Unregistering waits for a close callback that is running (libvirt holds a
   * lock while it does): on this thread that is safe, since the event worker that runs the callback is
   * not waiting for anything.
   */
  close(conn: ConnectPtr, domains: DomainPtr[], closeCallback: CallbackPtr): void {
    const { api } = n();
    if (api.virConnectUnregisterCloseCallback(conn, closeCallback) < 0) api.virResetLastError();
    for (const d of domains) api.virDomainFree(d);
    // virConnectClose can return 0 and still leave an error set after the peer died: the return value decides.
    check(api.virConnectClose(conn), 'virConnectClose');
  },
  isAlive(conn: ConnectPtr): boolean {
    return check(n().api.virConnectIsAlive(conn), 'virConnectIsAlive') === 1;
  },
  hostname(conn: ConnectPtr): string {
    return n().api.virConnectGetHostname(conn) ?? fail('virConnectGetHostname');
  },
  libVersion(conn: ConnectPtr): { major: number; minor: number; micro: number } {
    const out: [number] = [0];
    check(n().api.virConnectGetLibVersion(conn, out), 'virConnectGetLibVersion');
    return version(out[0]);
  },
  hypervisorVersion(conn: ConnectPtr): { major: number; minor: number; micro: number } {
    const out: [number] = [0];
    check(n().api.virConnectGetVersion(conn, out), 'virConnectGetVersion');
    return version(out[0]);
  },
  listDomains(conn: ConnectPtr, flags: number): DomainRef[] {
    const nat = n();
    const out: [MallocPtr | null] = [null];
    const count = check(nat.api.virConnectListAllDomains(conn, out, flags), 'virConnectListAllDomains');
    const array = out[0];
    if (!array) return [];
    const ptrs = nat.decodePointers<DomainPtr>(array, count);
    nat.api.free(array);
    const refs: DomainRef[] = [];
    try {
      for (const [i, p] of ptrs.entries()) {
        try {
          refs.push(domainRef(p, 'virConnectListAllDomains'));
        } catch (err) {
          for (const rest of ptrs.slice(i + 1)) nat.api.virDomainFree(rest);
          throw err;
        }
      }
    } catch (err) {
      for (const r of refs) nat.api.virDomainFree(r.ptr);
      throw err;
    }
    return refs;
  },
  lookupByName(conn: ConnectPtr, name: string): DomainRef {
    return domainRef(n().api.virDomainLookupByName(conn, name), 'virDomainLookupByName');
  },
  lookupByUUID(conn: ConnectPtr, uuid: string): DomainRef {
    return domainRef(n().api.virDomainLookupByUUIDString(conn, uuid), 'virDomainLookupByUUIDString');
  },
  lookupByID(conn: ConnectPtr, id: number): DomainRef {
    return domainRef(n().api.virDomainLookupByID(conn, id), 'virDomainLookupByID');
  },
  defineXML(conn: ConnectPtr, xml: string): DomainRef {
    return domainRef(n().api.virDomainDefineXML(conn, xml), 'virDomainDefineXML');
  },
  createXML(conn: ConnectPtr, xml: string, flags: number): DomainRef {
    return domainRef(n().api.virDomainCreateXML(conn, xml, flags), 'virDomainCreateXML');
  },
  domainFree(dom: DomainPtr): void {
    check(n().api.virDomainFree(dom), 'virDomainFree');
  },
  domainId(dom: DomainPtr): number | null {
    const id = n().api.virDomainGetID(dom);
    // (unsigned int)-1 means "not running" (or an error, which for a valid handle is the same thing here).
    if (id === 0xffffffff) {
      n().api.virResetLastError();
      return null;
    }
    return id;
  },
  domainState(dom: DomainPtr): [number, number] {
    const s: [number] = [0];
    const r: [number] = [0];
    check(n().api.virDomainGetState(dom, s, r, 0), 'virDomainGetState');
    return [s[0], r[0]];
  },
  domainInfo(dom: DomainPtr): RawDomainInfoData {
    const info: { state?: number; maxMem?: number | bigint; memory?: number | bigint; nrVirtCpu?: number; cpuTime?: number | bigint } = {};
    check(n().api.virDomainGetInfo(dom, info), 'virDomainGetInfo');
    return {
      state: info.state ?? 0,
      maxMemKiB: Number(info.maxMem ?? 0),
      memoryKiB: Number(info.memory ?? 0),
      vcpus: info.nrVirtCpu ?? 0,
      cpuTimeNs: Number(info.cpuTime ?? 0),
    };
  },
  domainXml(dom: DomainPtr, flags: number): string {
    return n().api.virDomainGetXMLDesc(dom, flags) ?? fail('virDomainGetXMLDesc');
  },
  domainIsActive(dom: DomainPtr): boolean {
    return check(n().api.virDomainIsActive(dom), 'virDomainIsActive') === 1;
  },
  domainIsPersistent(dom: DomainPtr): boolean {
    return check(n().api.virDomainIsPersistent(dom), 'virDomainIsPersistent') === 1;
  },
  domainStart(dom: DomainPtr, flags: number): void {
    check(n().api.virDomainCreateWithFlags(dom, flags), 'virDomainCreateWithFlags');
  },
  domainShutdown(dom: DomainPtr, flags = 0): void {
    // virDomainShutdownFlags(0) is virDomainShutdown: the hypervisor picks the method
    check(n().api.virDomainShutdownFlags(dom, flags), 'virDomainShutdownFlags');
  },
  domainDestroy(dom: DomainPtr): void {
    check(n().api.virDomainDestroy(dom), 'virDomainDestroy');
  },
  domainSuspend(dom: DomainPtr): void {
    check(n().api.virDomainSuspend(dom), 'virDomainSuspend');
  },
  domainResume(dom: DomainPtr): void {
    check(n().api.virDomainResume(dom), 'virDomainResume');
  },
  domainReboot(dom: DomainPtr, flags: number): void {
    check(n().api.virDomainReboot(dom, flags), 'virDomainReboot');
  },
  domainReset(dom: DomainPtr): void {
    check(n().api.virDomainReset(dom, 0), 'virDomainReset');
  },
  domainUndefine(dom: DomainPtr): void {
    check(n().api.virDomainUndefine(dom), 'virDomainUndefine');
  },
  domainMessages(dom: DomainPtr): string[] {
    const nat = n();
    const out: [MallocPtr | null] = [null];
    const count = check(nat.api.virDomainGetMessages(dom, out, 0), 'virDomainGetMessages');
    const array = out[0];
    if (!array) return [];
    const ptrs = nat.decodePointers<MallocPtr>(array, count);
    const messages = ptrs.map((p) => nat.decodeString(p));
    for (const p of ptrs) nat.api.free(p);
    nat.api.free(array);
    return messages;
  },
  qemuMonitorCommand(dom: DomainPtr, command: string, flags: number): string {
    const nat = n();
    const out: [MallocPtr | null] = [null];
    check(nat.api.virDomainQemuMonitorCommand(dom, command, out, flags), 'virDomainQemuMonitorCommand');
    const p = out[0];
    if (!p) return '';
    const reply = nat.decodeString(p);
    nat.api.free(p);
    return reply;
  },
  qemuAgentCommand(dom: DomainPtr, command: string, timeoutSeconds: number): string {
    return n().api.virDomainQemuAgentCommand(dom, command, timeoutSeconds, 0) ?? fail('virDomainQemuAgentCommand');
  },
  /**
   * virDomainMigrateToURI3 (peer-to-peer): the whole migration is this one call, so it holds this
   * connection's worker until it ends. src/migration runs it on a connection of its own.
   */
  migrateToURI3(dom: DomainPtr, destinationUri: string, params: TypedParam[], flags: number): void {
    const nat = n();
    const encoded = encodeTypedParams(nat, params);
    try {
      check(nat.api.virDomainMigrateToURI3(dom, destinationUri, encoded.params, encoded.count, flags), 'virDomainMigrateToURI3');
    } finally {
      encoded.free();
    }
  },
  /** virDomainGetJobStats: the job's type (0 = none) and its VIR_DOMAIN_JOB_* statistics. */
  jobStats(dom: DomainPtr, flags: number): { type: number; stats: Record<string, number | bigint | boolean | string> } {
    const nat = n();
    const type: [number] = [0];
    const params: [TypedParamsPtr | null] = [null];
    const count: [number] = [0];
    check(nat.api.virDomainGetJobStats(dom, type, params, count, flags), 'virDomainGetJobStats');
    try {
      return { type: type[0], stats: typedParamsToObject(decodeTypedParams(nat, params[0], count[0])) };
    } finally {
      if (params[0]) nat.api.virTypedParamsFree(params[0], count[0]);
    }
  },
  abortJob(dom: DomainPtr): void {
    check(n().api.virDomainAbortJob(dom), 'virDomainAbortJob');
  },
  migrateSetMaxDowntime(dom: DomainPtr, ms: number): void {
    check(n().api.virDomainMigrateSetMaxDowntime(dom, ms, 0), 'virDomainMigrateSetMaxDowntime');
  },
  migrateGetMaxDowntime(dom: DomainPtr): number {
    const out: [number | bigint] = [0];
    check(n().api.virDomainMigrateGetMaxDowntime(dom, out, 0), 'virDomainMigrateGetMaxDowntime');
    return Number(out[0]);
  },
  /** A worker round trip with no libvirt call (benchmarks the hand-off). */
  noop(): null {
    return null;
  },
};

export type ExecOps = typeof ops;
export type OpName = keyof ExecOps;
