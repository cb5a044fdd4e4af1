/**
 * The blocking libvirt calls, as run inside an executor worker thread: opening and closing a connection
 * (hand-written: they need the socket bookkeeping and the close callback), and `invoke`, which runs any
 * generated binding (src/libvirt/interpreter.ts). Each decides failure by the return value (-1 / NULL),
 * then reads libvirt's thread-local error on this same thread, and frees everything libvirt handed out
 * before returning plain data. Only `import type` this from the main thread.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { loadNative, type CallbackPtr, type ConnectPtr, type Native } from '../../native/libvirt.js';
import { failure, invoke, releaseObject } from './interpreter.js';

export { NativeFailure } from './interpreter.js';

let native: Native | undefined;
function n(): Native {
  if (!native) {
    native = loadNative();
    native.api.virSetErrorFunc(null, native.noopErrorHandler);
  }
  return native;
}

function fail(operation: string): never {
  return failure(n(), operation);
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
  close(conn: ConnectPtr, handles: { cls: string; ptr: bigint }[], closeCallback: CallbackPtr): void {
    const nat = n();
    const { api } = nat;
    if (api.virConnectUnregisterCloseCallback(conn, closeCallback) < 0) api.virResetLastError();
    for (const h of handles) {
      try {
        releaseObject(nat, h.cls, h.ptr);
      } catch {
        api.virResetLastError(); // a handle libvirt already dropped with a dead connection
      }
    }
    // virConnectClose can return 0 and still leave an error set after the peer died: the return value decides.
    if (api.virConnectClose(conn) < 0) fail('virConnectClose');
  },
  /** Runs one generated binding (src/generated/libvirt/functions.ts) with already validated arguments. */
  invoke(c: string, args: unknown[]): unknown {
    return invoke(n(), c, args);
  },
  /** Releases one object reference (virXFree). */
  release(cls: string, ptr: bigint): void {
    releaseObject(n(), cls, ptr);
  },
  /** Releases several object references in one hop (objects the garbage collector took together). */
  releaseMany(handles: { cls: string; ptr: bigint }[]): void {
    const nat = n();
    for (const h of handles) {
      try {
        releaseObject(nat, h.cls, h.ptr);
      } catch {
        nat.api.virResetLastError(); // a handle libvirt already dropped with a dead connection
      }
    }
  },
  /** A worker round trip with no libvirt call (benchmarks the hand-off). */
  noop(): null {
    return null;
  },
};

export type ExecOps = typeof ops;
export type OpName = keyof ExecOps;
