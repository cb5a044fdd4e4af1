/**
 * The C boundary: loads libvirt.so.0, libvirt-qemu.so.0 and libc through koffi, binding every prototype
 * in native/libvirt.h. This is the only module in libqemu that imports koffi. Everything it returns is
 * synchronous and blocking: call it from worker threads only (src/libvirt/ does), except for the few
 * non-blocking calls the runtime makes on the main thread (shutdown, free, and stopping the GLib loop at exit).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';

/** A raw C pointer as koffi 3 represents it (a BigInt address), branded so kinds cannot be mixed up. */
declare const pointerKind: unique symbol;
export type Pointer<Kind extends string> = bigint & { readonly [pointerKind]: Kind };
export type ConnectPtr = Pointer<'virConnect'>;
export type DomainPtr = Pointer<'virDomain'>;
export type TypedParamsPtr = Pointer<'virTypedParameter'>;
/** Memory libvirt malloc'ed and handed to us: free() it exactly once. */
export type MallocPtr = Pointer<'malloc'>;
export type GMainLoopPtr = Pointer<'GMainLoop'>;
/** A function pointer made by koffi.register. */
export type CallbackPtr = Pointer<'callback'>;

/** virError as libvirt keeps it in thread-local storage (only the fields we read are typed). */
export interface RawLibvirtError {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

export interface RawDomainInfo {
  state: number;
  maxMem: number | bigint;
  memory: number | bigint;
  nrVirtCpu: number;
  cpuTime: number | bigint;
}

type Out<T> = [T];

/** TypeScript signatures of native/libvirt.h (koffi converts: pointers ↔ bigint | null, `_Out_` ↔ 1-element arrays). */
export interface LibvirtApi {
  virInitialize(): number;
  virGetVersion(libVer: Out<number>, type: string | null, typeVer: Out<number> | null): number;
  virSetErrorFunc(userData: null, handler: bigint | null): void;
  virGetLastError(): bigint | null;
  virResetLastError(): void;
  virEventRegisterDefaultImpl(): number;

  virConnectOpen(name: string | null): ConnectPtr | null;
  virConnectOpenReadOnly(name: string | null): ConnectPtr | null;
  virConnectClose(conn: ConnectPtr): number;
  virConnectIsAlive(conn: ConnectPtr): number;
  virConnectSetKeepAlive(conn: ConnectPtr, interval: number, count: number): number;
  virConnectGetURI(conn: ConnectPtr): string | null;
  virConnectGetHostname(conn: ConnectPtr): string | null;
  virConnectGetLibVersion(conn: ConnectPtr, libVer: Out<number>): number;
  virConnectGetVersion(conn: ConnectPtr, hvVer: Out<number>): number;
  virConnectRegisterCloseCallback(conn: ConnectPtr, cb: CallbackPtr, opaque: bigint | null, freecb: null): number;
  virConnectUnregisterCloseCallback(conn: ConnectPtr, cb: CallbackPtr): number;
  virConnectListAllDomains(conn: ConnectPtr, domains: Out<MallocPtr | null>, flags: number): number;
  virConnectDomainEventRegisterAny(conn: ConnectPtr, dom: DomainPtr | null, eventID: number, cb: CallbackPtr, opaque: bigint | null, freecb: null): number;
  virConnectDomainEventDeregisterAny(conn: ConnectPtr, callbackID: number): number;

  virDomainLookupByName(conn: ConnectPtr, name: string): DomainPtr | null;
  virDomainLookupByUUIDString(conn: ConnectPtr, uuid: string): DomainPtr | null;
  virDomainLookupByID(conn: ConnectPtr, id: number): DomainPtr | null;
  virDomainDefineXML(conn: ConnectPtr, xml: string): DomainPtr | null;
  virDomainCreateXML(conn: ConnectPtr, xml: string, flags: number): DomainPtr | null;
  virDomainRef(dom: DomainPtr): number;
  virDomainFree(dom: DomainPtr): number;
  virDomainGetName(dom: DomainPtr): string | null;
  virDomainGetUUIDString(dom: DomainPtr, buf: Buffer): number;
  virDomainGetID(dom: DomainPtr): number;
  virDomainGetState(dom: DomainPtr, state: Out<number>, reason: Out<number>, flags: number): number;
  virDomainGetInfo(dom: DomainPtr, info: Partial<RawDomainInfo>): number;
  virDomainGetXMLDesc(dom: DomainPtr, flags: number): string | null;
  virDomainCreateWithFlags(dom: DomainPtr, flags: number): number;
  virDomainShutdown(dom: DomainPtr): number;
  virDomainDestroy(dom: DomainPtr): number;
  virDomainSuspend(dom: DomainPtr): number;
  virDomainResume(dom: DomainPtr): number;
  virDomainReboot(dom: DomainPtr, flags: number): number;
  virDomainReset(dom: DomainPtr, flags: number): number;
  virDomainUndefine(dom: DomainPtr): number;
  virDomainIsActive(dom: DomainPtr): number;
  virDomainIsPersistent(dom: DomainPtr): number;
  virDomainGetMessages(dom: DomainPtr, msgs: Out<MallocPtr | null>, flags: number): number;

  virTypedParamsAddInt(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: number): number;
  virTypedParamsAddUInt(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: number): number;
  virTypedParamsAddLLong(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: number | bigint): number;
  virTypedParamsAddULLong(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: number | bigint): number;
  virTypedParamsAddDouble(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: number): number;
  virTypedParamsAddBoolean(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: number): number;
  virTypedParamsAddString(p: Out<TypedParamsPtr | null>, n: Out<number>, max: Out<number>, name: string, value: string): number;
  virTypedParamsFree(params: TypedParamsPtr | null, nparams: number): void;
  virTypedParamsClear(params: Buffer, nparams: number): void;
  virDomainStatsRecordListFree(stats: bigint): void;

  virDomainMigrateToURI3(dom: DomainPtr, dconnuri: string, params: TypedParamsPtr | null, nparams: number, flags: number): number;
  virDomainGetJobStats(dom: DomainPtr, type: Out<number>, params: Out<TypedParamsPtr | null>, nparams: Out<number>, flags: number): number;
  virDomainAbortJob(dom: DomainPtr): number;
  virDomainMigrateSetMaxDowntime(dom: DomainPtr, downtime: number | bigint, flags: number): number;
  virDomainMigrateGetMaxDowntime(dom: DomainPtr, downtime: Out<number | bigint>, flags: number): number;

  virDomainQemuMonitorCommand(dom: DomainPtr, cmd: string, result: Out<MallocPtr | null>, flags: number): number;
  virDomainQemuAgentCommand(dom: DomainPtr, cmd: string, timeout: number, flags: number): string | null;
  virConnectDomainQemuMonitorEventRegister(conn: ConnectPtr, dom: DomainPtr | null, event: string | null, cb: CallbackPtr, opaque: bigint | null, freecb: null, flags: number): number;
  virConnectDomainQemuMonitorEventDeregister(conn: ConnectPtr, callbackID: number): number;

  g_main_loop_new(context: null, isRunning: number): GMainLoopPtr;
  g_main_loop_quit(loop: GMainLoopPtr): void;
  g_thread_new(name: string, func: bigint, data: bigint): bigint;
  g_main_context_wakeup(context: null): void;
  g_main_context_acquire(context: null): number;
  g_main_context_release(context: null): void;

  free(ptr: MallocPtr | bigint | null): void;
  shutdown(fd: number, how: number): number;
}

export type CallbackTypeName =
  | 'virConnectDomainEventCallback'
  | 'virConnectDomainEventGenericCallback'
  | 'virConnectCloseFunc'
  | 'virConnectDomainEventMigrationIterationCallback'
  | 'virConnectDomainEventJobCompletedCallback'
  | 'virConnectDomainQemuMonitorEventCallback';

export interface Native {
  readonly api: LibvirtApi;
  /** Registers a JS function as a C function pointer of a `callback` type from libvirt.h. */
  register(fn: (...args: never[]) => unknown, type: CallbackTypeName): CallbackPtr;
  unregister(ptr: CallbackPtr): void;
  /** Address of libc's free(): libvirt calls it as a no-op error handler (free(NULL)). */
  readonly noopErrorHandler: bigint;
  /** Address of GLib's g_main_loop_run(): the body of the native event-loop thread (g_thread_new). */
  readonly mainLoopRun: bigint;
  /** Reads the calling thread's last libvirt error (does not reset it). */
  lastError(): RawLibvirtError | null;
  /** Decodes `count` pointers from a malloc'ed array (e.g. virConnectListAllDomains' result). */
  decodePointers<P extends bigint>(array: MallocPtr, count: number): P[];
  /** Copies a malloc'ed NUL-terminated string. */
  decodeString(ptr: MallocPtr | bigint): string;
  /** Reads `count` virTypedParameter structs (from libvirt's memory, or a buffer it filled in). */
  decodeTypedParams(params: TypedParamsPtr | Buffer, count: number): RawTypedParam[];
  /** Reads one virDomainStatsRecord. */
  decodeStatsRecord(ptr: bigint): { dom: bigint; params: bigint; nparams: number };
  /**
   * A C function of libvirt (0) or libvirt-qemu (1) from its koffi prototype, bound on first use and
   * cached: the generated call table binds only what a program calls.
   */
  bind(lib: 0 | 1, proto: string): (...args: unknown[]) => unknown;
  /** Defines a plain struct (fields as `name:type`, `name:char[n]`) once; returns its size in bytes. */
  struct(name: string, fields: readonly string[]): number;
  /** Decodes a struct of a type defined with struct() from a buffer libvirt filled in, or from C memory. */
  decodeStruct(buffer: Buffer | bigint, name: string, count?: number): Record<string, unknown>;
  /** Registers a JS function as a C function pointer with this koffi prototype (cached by prototype). */
  callback(proto: string, fn: (...args: never[]) => unknown): CallbackPtr;
  /** Copies `length` bytes from C memory. */
  copyBytes(ptr: bigint, length: number): Buffer;
  /** Decodes a virError (e.g. a connection's last error) without taking ownership. */
  decodeError(ptr: bigint): RawLibvirtError;
  /** Size of a virTypedParameter, for caller-allocated arrays. */
  readonly typedParamSize: number;
}

export interface RawTypedParam {
  field: string;
  type: number;
  value: { i: number; ui: number; l: number | bigint; ul: number | bigint; d: number; b: number; s: bigint | null };
}

let loaded: Native | undefined;

/** Where libvirt.h lives: next to this module in the source tree, or in the package's native/ when built to dist/native/. */
function headerPath(): string {
  const candidates = [new URL('./libvirt.h', import.meta.url), new URL('../../native/libvirt.h', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new Error(`native/libvirt.h not found next to ${fileURLToPath(import.meta.url)}`);
}

/** Splits libvirt.h into `{ lib, kind, text }` declarations. */
export function parseHeader(text: string): { lib: string; kind: 'func' | 'callback'; name: string; text: string }[] {
  const decls: { lib: string; kind: 'func' | 'callback'; name: string; text: string }[] = [];
  let lib = '';
  const noBlockComments = text.replace(/\/\*[\s\S]*?\*\//g, '');
  let pending = '';
  for (const rawLine of noBlockComments.split('\n')) {
    const libMatch = /^\s*\/\/\s*@lib\s+(\S+)/.exec(rawLine);
    if (libMatch) {
      lib = libMatch[1]!;
      continue;
    }
    pending += ' ' + rawLine.replace(/\/\/.*$/, '');
    let semi: number;
    while ((semi = pending.indexOf(';')) >= 0) {
      const decl = pending.slice(0, semi).trim().replace(/\s+/g, ' ');
      pending = pending.slice(semi + 1);
      if (!decl) continue;
      const isCallback = decl.startsWith('callback ');
      const body = isCallback ? decl.slice('callback '.length) : decl;
      const name = /([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(body)?.[1];
      if (!name || !lib) throw new Error(`libvirt.h: cannot parse declaration "${decl}"`);
      decls.push({ lib, kind: isCallback ? 'callback' : 'func', name, text: body });
    }
  }
  return decls;
}

/** Loads the libraries once per thread (each worker thread has its own koffi instance). */
export function loadNative(): Native {
  if (loaded) return loaded;

  koffi.pointer('virConnectPtr', koffi.opaque('virConnect'));
  koffi.pointer('virDomainPtr', koffi.opaque('virDomain'));
  koffi.pointer('GMainLoopPtr', koffi.opaque('GMainLoop'));
  const virError = koffi.struct('virError', {
    code: 'int', domain: 'int', message: 'const char *', level: 'int', conn: 'void *', dom: 'void *',
    str1: 'const char *', str2: 'const char *', str3: 'const char *', int1: 'int', int2: 'int', net: 'void *',
  });
  koffi.struct('virDomainInfo', {
    state: 'unsigned char', maxMem: 'unsigned long', memory: 'unsigned long', nrVirtCpu: 'unsigned short', cpuTime: 'unsigned long long',
  });
  const valueUnion = koffi.union('virTypedParameterValue', {
    i: 'int', ui: 'unsigned int', l: 'long long', ul: 'unsigned long long', d: 'double', b: 'char', s: 'void *',
  });
  const virTypedParameter = koffi.struct('virTypedParameter', { field: koffi.array('char', 80, 'String'), type: 'int', value: valueUnion });
  koffi.pointer('virTypedParameterPtr', virTypedParameter);
  const statsRecord = koffi.struct('virDomainStatsRecord', { dom: 'void *', params: 'void *', nparams: 'int' });

  const libs = new Map<string, ReturnType<typeof koffi.load>>();
  const bound = new Map<string, (...args: unknown[]) => unknown>();
  const structs = new Map<string, ReturnType<typeof koffi.struct>>();
  const api: Record<string, unknown> = {};
  const protos = new Map<string, ReturnType<typeof koffi.proto>>();
  for (const decl of parseHeader(readFileSync(headerPath(), 'utf8'))) {
    if (decl.kind === 'callback') {
      protos.set(decl.name, koffi.proto(decl.text));
      continue;
    }
    let lib = libs.get(decl.lib);
    if (!lib) {
      lib = koffi.load(decl.lib);
      libs.set(decl.lib, lib);
    }
    api[decl.name] = lib.func(decl.text);
  }
  const libc = libs.get('libc.so.6');
  if (!libc) throw new Error('libvirt.h declares nothing from libc.so.6');
  const noopErrorHandler = libc.symbol('free') as bigint;
  const glib = libs.get('libglib-2.0.so.0');
  if (!glib) throw new Error('libvirt.h declares nothing from libglib-2.0.so.0');
  const mainLoopRun = glib.symbol('g_main_loop_run') as bigint;
  const typed = api as unknown as LibvirtApi;
  // libvirt's thread-local error storage and locks need this before any other call (virOnce: idempotent).
  if (typed.virInitialize() < 0) throw new Error('virInitialize failed');

  loaded = {
    api: typed,
    register(fn, type) {
      const proto = protos.get(type);
      if (!proto) throw new Error(`libvirt.h declares no callback type ${type}`);
      return koffi.register(fn, koffi.pointer(proto)) as CallbackPtr;
    },
    unregister(ptr) {
      koffi.unregister(ptr);
    },
    noopErrorHandler,
    mainLoopRun,
    lastError() {
      const p = typed.virGetLastError();
      if (!p) return null;
      return koffi.decode(p, virError) as RawLibvirtError;
    },
    decodePointers<P extends bigint>(array: MallocPtr, count: number): P[] {
      if (count <= 0) return [];
      return koffi.decode(array, 'void *', count) as P[];
    },
    decodeString(ptr) {
      return koffi.decode(ptr, 'char', -1) as string;
    },
    decodeTypedParams(params, count) {
      if (count <= 0) return [];
      return koffi.decode(params, virTypedParameter, count) as RawTypedParam[];
    },
    decodeStatsRecord(ptr) {
      return koffi.decode(ptr, statsRecord) as { dom: bigint; params: bigint; nparams: number };
    },
    bind(lib, proto) {
      let fn = bound.get(proto);
      if (!fn) {
        const soname = lib === 0 ? 'libvirt.so.0' : 'libvirt-qemu.so.0';
        let handle = libs.get(soname);
        if (!handle) {
          handle = koffi.load(soname);
          libs.set(soname, handle);
        }
        fn = handle.func(proto) as (...args: unknown[]) => unknown;
        bound.set(proto, fn);
      }
      return fn;
    },
    struct(name, fields) {
      let type = structs.get(name);
      if (!type) {
        const members: Record<string, unknown> = {};
        for (const f of fields) {
          const [field, ctype] = [f.slice(0, f.indexOf(':')), f.slice(f.indexOf(':') + 1)];
          const arr = /^char\[(\d+)\]$/.exec(ctype);
          members[field] = arr ? koffi.array('char', Number(arr[1]), 'String') : ctype;
        }
        type = koffi.struct(`lq_${name}`, members as never);
        structs.set(name, type);
      }
      return koffi.sizeof(type);
    },
    decodeStruct(buffer, name, count) {
      const type = structs.get(name);
      if (!type) throw new Error(`struct ${name} is not defined`);
      return (count === undefined ? koffi.decode(buffer, type) : koffi.decode(buffer, type, count)) as Record<string, unknown>;
    },
    callback(proto, fn) {
      return koffi.register(fn, koffi.pointer(koffi.proto(proto))) as CallbackPtr;
    },
    copyBytes(ptr, length) {
      return length <= 0 ? Buffer.alloc(0) : Buffer.from(koffi.view(ptr, length).slice(0));
    },
    decodeError(ptr) {
      return koffi.decode(ptr, virError) as RawLibvirtError;
    },
    typedParamSize: koffi.sizeof(virTypedParameter),
  };
  return loaded;
}
