/**
 * Runs one generated libvirt call inside an executor worker: reads the function's entry in the generated
 * call table, fills in the hidden C arguments (out-parameters, counts, buffers), makes the blocking call,
 * decides failure from the return value, and turns everything libvirt handed over into plain data,
 * freeing each allocation exactly once. Objects come back as { ptr, name, uuid } references that the
 * main thread wraps (and releases when unreferenced or on close()).
 */
import type { Native, TypedParamsPtr } from '../../native/libvirt.js';
import { CLASS_SPECS, FUNCTIONS, INTERNAL_FUNCTIONS, STRUCTS } from '../generated/libvirt/functions.js';
import { virErrorDomain, virErrorNumber } from '../generated/libvirt/enums.js';
import type { LibvirtErrorData } from './errors.js';
import type { FunctionSpec, ObjectRef } from './spec.js';
import { decodeTypedParams, encodeTypedParams, typedParamsToObject, type TypedParam } from './typed-params.js';

/** Thrown inside the worker; posted to the main thread as data. */
export class NativeFailure extends Error {
  constructor(readonly data: LibvirtErrorData) {
    super(data.message);
  }
}

export function failure(native: Native, operation: string): never {
  const e = native.lastError();
  throw new NativeFailure(
    e
      ? { code: e.code, domain: e.domain, message: e.message ?? 'unknown libvirt error', level: e.level, operation }
      : { code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_NONE, message: 'failed without setting an error', operation },
  );
}

function spec(name: string): FunctionSpec {
  const s = FUNCTIONS[name] ?? INTERNAL_FUNCTIONS[name];
  if (!s) throw new Error(`no generated binding for ${name}`);
  return s;
}

/** `kind:detail` split once. */
function splitKind(kind: string): [string, string] {
  const colon = kind.indexOf(':');
  return colon < 0 ? [kind, ''] : [kind.slice(0, colon), kind.slice(colon + 1)];
}

/** A function's entry prepared once per thread: its bound C function and its kinds already split. */
interface Plan {
  s: FunctionSpec;
  fn: (...args: unknown[]) => unknown;
  kinds: string[];
  details: string[];
  ret: string;
  retDetail: string;
  /**
   * The common shapes, run without the general loop: 'direct' = every argument is given as is (the C
   * return value is the result), 'outStr' = given arguments plus one `char **` result (e.g.
   * virDomainQemuMonitorCommand), at index `outAt`.
   */
  shape: 'direct' | 'outStr' | 'general';
  outAt: number;
}

const plans = new Map<string, Plan>();

function planFor(native: Native, name: string): Plan {
  let p = plans.get(name);
  if (p !== undefined) return p;
  const s = spec(name);
  const split = s.args.map(splitKind);
  const [ret, retDetail] = splitKind(s.ret);
  const kinds = split.map((k) => k[0]);
  const outStrs = kinds.filter((k) => k === 'outStr').length;
  const onlyIn = kinds.every((k) => k === 'in' || k === 'outStr');
  const shape = onlyIn && outStrs === 0 ? 'direct' : onlyIn && outStrs === 1 && ret === 'int' && s.outs === undefined ? 'outStr' : 'general';
  p = { s, fn: native.bind(s.lib, s.proto), kinds, details: split.map((k) => k[1]), ret, retDetail, shape, outAt: kinds.indexOf('outStr') };
  plans.set(name, p);
  return p;
}

function callC(native: Native, name: string, args: unknown[]): unknown {
  const s = spec(name);
  return native.bind(s.lib, s.proto)(...args);
}

/** Reads a returned object's identity (local calls: no RPC) and hands it over as a reference. */
export function objectRef(native: Native, cls: string, ptr: bigint): ObjectRef {
  const c = CLASS_SPECS[cls];
  if (!c) return { ptr };
  const ref: ObjectRef = { ptr };
  if (c.name) {
    const name = callC(native, c.name, [ptr]) as string | null;
    if (name !== null) ref.name = name;
  }
  if (c.uuid) {
    const buf = Buffer.alloc(37);
    if ((callC(native, c.uuid, [ptr, buf]) as number) >= 0) ref.uuid = buf.toString('latin1', 0, 36);
    else native.api.virResetLastError();
  }
  return ref;
}

export function releaseObject(native: Native, cls: string, ptr: bigint): void {
  const c = CLASS_SPECS[cls];
  if (!c) throw new Error(`unknown libvirt class ${cls}`);
  if ((callC(native, c.free, [ptr]) as number) < 0) failure(native, c.free);
}

function decodeStrings(native: Native, array: bigint | null, count: number): string[] {
  if (!array) return [];
  const ptrs = native.decodePointers<bigint>(array as never, count);
  const out = ptrs.map((p) => (p ? native.decodeString(p) : ''));
  for (const p of ptrs) if (p) native.api.free(p);
  native.api.free(array);
  return out;
}

/** Runs `name` with the JS-visible arguments `given` (objects already turned into pointers). */
export function invoke(native: Native, name: string, given: unknown[]): unknown {
  const plan = planFor(native, name);
  if (plan.shape === 'direct' && given.length === plan.kinds.length) return finish(native, name, plan, plan.fn(...given), NO_AFTER);
  if (plan.shape === 'outStr' && given.length === plan.kinds.length - 1) return invokeOutStr(native, name, plan, given);
  const { s, fn, kinds, details } = plan;
  const cargs: unknown[] = [];
  /** Decoders run after the call, in argument order, producing the outputs. */
  const after: ((rc: number) => unknown)[] = [];
  const cleanup: (() => void)[] = [];
  let g = 0;
  const next = (): unknown => given[g++];
  try {
    for (let i = 0; i < kinds.length; i++) {
      const k = kinds[i]!;
      const detail = details[i]!;
      switch (k) {
        case 'in':
          cargs.push(next());
          break;
        case 'out': {
          const cell: [number | bigint] = [0];
          cargs.push(cell);
          after.push(() => cell[0]);
          break;
        }
        case 'outStr': {
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push(() => takeString(native, cell[0]));
          break;
        }
        case 'outIntsPrev': {
          // file descriptors: as many as the out-parameter just before says; the array is freed here
          const countCell = cargs[cargs.length - 1] as [number];
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push(() => {
            const p = cell[0];
            if (!p) return [];
            const bytes = native.copyBytes(p, countCell[0] * 4);
            native.api.free(p);
            return Array.from({ length: countCell[0] }, (_, j) => bytes.readInt32LE(j * 4));
          });
          break;
        }
        case 'outStrs': {
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push((rc) => decodeStrings(native, cell[0], rc));
          break;
        }
        case 'outObjs': {
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push((rc) => {
            const array = cell[0];
            if (!array) return [];
            const ptrs = native.decodePointers<bigint>(array as never, rc);
            native.api.free(array);
            return ptrs.map((p) => objectRef(native, detail, p));
          });
          break;
        }
        case 'statsOut': {
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push((rc) => decodeStats(native, cell[0], rc));
          break;
        }
        case 'objsIn': {
          // NULL-terminated array of domain pointers
          const doms = next() as bigint[];
          const buf = Buffer.alloc((doms.length + 1) * 8);
          doms.forEach((d, j) => buf.writeBigUInt64LE(d, j * 8));
          cargs.push(buf);
          break;
        }
        case 'tpIn': {
          const encoded = encodeTypedParams(native, next() as TypedParam[]);
          cleanup.push(() => encoded.free());
          cargs.push(encoded.params, encoded.count);
          i++; // tpCount
          break;
        }
        case 'tpOut': {
          const params: [TypedParamsPtr | null] = [null];
          const count: [number] = [0];
          cargs.push(params, count);
          i++; // tpOutCount
          after.push(() => {
            try {
              return typedParamsToObject(decodeTypedParams(native, params[0], count[0]));
            } finally {
              if (params[0]) native.api.virTypedParamsFree(params[0], count[0]);
            }
          });
          break;
        }
        case 'tpBuf':
        case 'tpBufSched': {
          // caller-allocated: ask for the count first (params NULL, *nparams 0; or the scheduler type's
          // count), then let libvirt fill a buffer that size
          const countCell: [number] = [0];
          if (k === 'tpBuf') {
            if ((fn(...cargs, null, countCell, ...given.slice(g)) as number) < 0) failure(native, name);
          } else {
            const sched = invoke(native, 'virDomainGetSchedulerType', [cargs[0]]) as { nparams: number };
            countCell[0] = sched.nparams;
          }
          const n = countCell[0];
          const buf = Buffer.alloc(Math.max(1, n) * native.typedParamSize);
          cargs.push(n > 0 ? buf : null, countCell);
          i++; // tpBufCount
          after.push(() => {
            if (n <= 0) return {};
            try {
              return typedParamsToObject(decodeTypedParams(native, buf, countCell[0]));
            } finally {
              native.api.virTypedParamsClear(buf, countCell[0]); // frees the strings libvirt put in
            }
          });
          break;
        }
        case 'struct': {
          const size = native.struct(detail, STRUCTS[detail]!);
          const buf = Buffer.alloc(size);
          cargs.push(buf);
          after.push(() => native.decodeStruct(buf, detail));
          break;
        }
        case 'structArray': {
          const size = native.struct(detail, STRUCTS[detail]!);
          const n = Number(next());
          const buf = Buffer.alloc(Math.max(1, n) * size);
          cargs.push(buf, n);
          i++; // count
          after.push((rc) => (rc > 0 ? native.decodeStruct(buf, detail, Math.min(rc, n)) : []));
          break;
        }
        case 'structBuf': {
          const size = native.struct(detail, STRUCTS[detail]!);
          const countCell: [number] = [0];
          if ((fn(...cargs, null, countCell, ...given.slice(g)) as number) < 0) failure(native, name);
          const n = countCell[0];
          const buf = Buffer.alloc(Math.max(1, n) * size);
          cargs.push(buf, countCell);
          i++; // tpBufCount
          after.push(() => (countCell[0] > 0 ? native.decodeStruct(buf, detail, Math.min(countCell[0], n)) : []));
          break;
        }
        case 'sizeof':
          cargs.push(native.struct(detail, STRUCTS[detail]!));
          break;
        case 'uuid': {
          const buf = Buffer.alloc(37);
          cargs.push(buf);
          after.push(() => buf.toString('latin1', 0, 36));
          break;
        }
        case 'uuidIn': {
          const uuid = next() as Uint8Array;
          if (uuid.length !== 16) throw new NativeFailure({ code: virErrorNumber.VIR_ERR_INVALID_ARG, domain: virErrorDomain.VIR_FROM_NONE, message: `a raw UUID has 16 bytes, got ${uuid.length}`, operation: name });
          cargs.push(uuid);
          break;
        }
        case 'uuidOut': {
          const buf = Buffer.alloc(16);
          cargs.push(buf);
          after.push(() => buf);
          break;
        }
        case 'ids':
        case 'names': {
          const max = Number(given[g]);
          const buf = Buffer.alloc(Math.max(1, max) * (k === 'ids' ? 4 : 8));
          cargs.push(buf, next());
          i++; // max
          after.push((rc) => {
            if (k === 'ids') return Array.from({ length: rc }, (_, j) => buf.readInt32LE(j * 4));
            const out: string[] = [];
            for (let j = 0; j < rc; j++) {
              const p = buf.readBigUInt64LE(j * 8);
              out.push(native.decodeString(p));
              native.api.free(p);
            }
            return out;
          });
          break;
        }
        case 'strsIn':
        case 'uintsIn':
        case 'bytesIn': {
          const v = next() as string[] | number[] | Buffer;
          cargs.push(v, v.length);
          i++; // count
          break;
        }
        case 'countBefore': {
          // the length of the array argument that follows (both given arrays must match, e.g. virNodeAllocPages)
          const v = given[g] as number[];
          if (s.args[i + 2] === 'ullsInAfterCount' && (given[g + 1] as unknown[]).length !== v.length) {
            throw new Error(`${name}: both arrays must have the same length`);
          }
          cargs.push(v.length);
          break;
        }
        case 'uintsInAfterCount':
          cargs.push(Uint32Array.from(next() as number[]));
          break;
        case 'ullsInAfterCount':
          cargs.push(BigUint64Array.from((next() as (number | bigint)[]).map((v) => BigInt(v))));
          break;
        case 'ullsOutMax':
        case 'ullsOutPages': {
          // freeMems[maxCells] (maxCells is the JS argument after startCell); counts[npages * cellCount]
          const count = k === 'ullsOutMax' ? Number(given[g + 1]) : Number(cargs[1]) * Number(cargs[cargs.length - 1]);
          if (!Number.isInteger(count) || count < 0 || count > 1 << 20) throw new Error(`${name}: array size ${count} out of range`);
          const arr = new BigUint64Array(Math.max(1, count));
          cargs.push(arr);
          after.push((rc) => Array.from(arr.subarray(0, Math.min(count, k === 'ullsOutMax' ? rc : count)), (v) => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)));
          break;
        }
        case 'intsIn':
          cargs.push(Int32Array.from(next() as number[]));
          break;
        case 'bytesOut': {
          const size = Number(next());
          const buf = Buffer.alloc(size);
          cargs.push(buf, size);
          i++; // count
          // stream reads return how much they read; pin-info calls fill the whole map
          after.push((rc) => (name.startsWith('virStreamRecv') ? buf.subarray(0, rc) : buf));
          break;
        }
        case 'bytesOutPrev': {
          const size = Number(cargs[cargs.length - 1]);
          const buf = Buffer.alloc(size);
          cargs.push(buf);
          after.push(() => buf);
          break;
        }
        case 'bytesOutProduct': {
          const ncpumaps = Number(cargs[cargs.length - 1]);
          const maplen = Number(next());
          const buf = Buffer.alloc(Math.max(1, ncpumaps * maplen));
          cargs.push(buf, maplen);
          i++;
          after.push(() => buf);
          break;
        }
        case 'bytesAllocRc': {
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push((rc) => {
            const p = cell[0];
            if (!p) return Buffer.alloc(0);
            const bytes = native.copyBytes(p, Math.ceil(rc / 8));
            native.api.free(p);
            return bytes;
          });
          break;
        }
        case 'bytesLen': {
          const cell: [number] = [0];
          cargs.push(cell);
          after.push(() => cell[0]);
          break;
        }
        case 'list': {
          if (detail === 'virDomainGetDiskErrors') {
            // caller-allocated: count them first (errors NULL, maxerrors 0)
            const count = fn(...cargs, null, 0, ...given.slice(g)) as number;
            if (count < 0) failure(native, name);
            const size = native.struct('lqDiskError', ['disk:void *', 'error:int']);
            const buf = Buffer.alloc(Math.max(1, count) * size);
            cargs.push(count > 0 ? buf : null, count);
            i++; // listMax
            after.push((rc) => {
              const rows = rc > 0 ? (native.decodeStruct(buf, 'lqDiskError', rc) as unknown as { disk: bigint | null; error: number }[]) : [];
              return rows.map((r) => {
                const disk = r.disk ? native.decodeString(r.disk) : '';
                if (r.disk) native.api.free(r.disk);
                return { disk, error: r.error };
              });
            });
            break;
          }
          const cell: [bigint | null] = [null];
          cargs.push(cell);
          after.push((rc) => decodeList(native, detail, cell[0], rc));
          break;
        }
        default:
          throw new Error(`${name}: unknown argument kind ${s.args[i]}`);
      }
    }
    const rv = fn(...cargs);
    return finish(native, name, plan, rv, after);
  } finally {
    for (const c of cleanup) c();
  }
}

const NO_AFTER: ((rc: number) => unknown)[] = [];

/** The given arguments with one `char **` result cell in between; returns the string (freed here). */
function invokeOutStr(native: Native, name: string, plan: Plan, given: unknown[]): unknown {
  const cell: [bigint | null] = [null];
  const cargs = new Array<unknown>(given.length + 1);
  for (let i = 0, g = 0; i < cargs.length; i++) cargs[i] = i === plan.outAt ? cell : given[g++];
  if ((plan.fn(...cargs) as number) < 0) failure(native, name);
  return takeString(native, cell[0]);
}

/** A `char *` libvirt handed over, as a string ('' for NULL); the C string is freed. */
function takeString(native: Native, p: bigint | null): string {
  if (!p) return '';
  const str = native.decodeString(p);
  native.api.free(p);
  return str;
}

function finish(native: Native, name: string, plan: Plan, rv: unknown, after: ((rc: number) => unknown)[]): unknown {
  const { s, ret: k, retDetail: detail } = plan;
  const kind = s.ret;
  switch (k) {
    case 'int': {
      const rc = rv as number;
      if (rc < 0) failure(native, name);
      if (after.length === 0) return rc;
      const outs = after.map((a) => a(rc));
      if (outs.length === 1) return outs[0];
      return Object.fromEntries(s.outs!.map((n, i) => [n, outs[i]]));
    }
    case 'intAgain': {
      const rc = rv as number;
      if (rc === -2) return null;
      if (rc < 0) failure(native, name);
      return after.length === 0 ? rc : after[0]!(rc);
    }
    case 'bool': {
      const rc = rv as number;
      if (rc < 0) failure(native, name);
      return rc === 1;
    }
    case 'str': {
      if (rv === null) failure(native, name);
      if (after.length === 0) return rv;
      const outs = after.map((a) => a(0));
      return Object.fromEntries(s.outs!.map((n, i) => [n, i === 0 ? rv : outs[i - 1]]));
    }
    case 'cstr':
      if (rv === null) failure(native, name);
      return rv;
    case 'void':
      return undefined;
    case 'uint':
    case 'ulong':
    case 'ullong': {
      // unsigned returns signal failure with 0 or -1 plus an error: libvirt resets the error on entry
      if (native.lastError()) failure(native, name);
      return rv;
    }
    case 'obj':
      if (!rv) failure(native, name);
      return objectRef(native, detail, rv as bigint);
    case 'borrowed': {
      if (!rv) failure(native, name);
      const ref = CLASS_SPECS[detail]!.free.replace(/Free$/, 'Ref');
      if ((callC(native, ref, [rv]) as number) < 0) failure(native, ref);
      return objectRef(native, detail, rv as bigint);
    }
    case 'conn':
      if (!rv) failure(native, name);
      return null;
    case 'bytes': {
      if (!rv) failure(native, name);
      const len = after[0]!(0) as number;
      const bytes = native.copyBytes(rv as bigint, len);
      native.api.free(rv as bigint);
      return bytes;
    }
    case 'error':
    case 'errorOwned': {
      if (!rv) return null;
      const e = native.decodeError(rv as bigint);
      if (k === 'errorOwned') native.bind(0, 'void virFreeError(void *err)')(rv);
      return { code: e.code, domain: e.domain, message: e.message ?? '', level: e.level } satisfies LibvirtErrorData;
    }
    default:
      throw new Error(`${name}: unknown return kind ${kind}`);
  }
}

/** virDomainStatsRecord[]: each record's domain gets its own reference before the list is freed. */
function decodeStats(native: Native, array: bigint | null, count: number): { domain: ObjectRef; stats: Record<string, unknown> }[] {
  if (!array) return [];
  try {
    const records = native.decodePointers<bigint>(array as never, count);
    return records.map((rec) => {
      const r = native.decodeStatsRecord(rec);
      if ((callC(native, 'virDomainRef', [r.dom]) as number) < 0) failure(native, 'virDomainRef');
      return { domain: objectRef(native, 'Domain', r.dom), stats: typedParamsToObject(decodeTypedParams(native, r.params as TypedParamsPtr, r.nparams)) };
    });
  } finally {
    native.api.virDomainStatsRecordListFree(array);
  }
}

/** Struct layouts and release functions of the arrays libvirt allocates with strings inside. */
const LISTS: Record<string, { struct: string[]; free?: string; inline?: boolean }> = {
  virDomainGetFSInfo: { struct: ['mountpoint:const char *', 'name:const char *', 'fstype:const char *', 'ndevAlias:size_t', 'devAlias:void *'], free: 'virDomainFSInfoFree' },
  virDomainGetIOThreadInfo: { struct: ['iothread_id:unsigned int', 'cpumap:void *', 'cpumaplen:int'], free: 'virDomainIOThreadInfoFree' },
  virDomainInterfaceAddresses: { struct: ['name:const char *', 'hwaddr:const char *', 'naddrs:unsigned int', 'addrs:void *'], free: 'virDomainInterfaceFree' },
  virNetworkGetDHCPLeases: {
    struct: ['iface:const char *', 'expirytime:long long', 'type:int', 'mac:const char *', 'iaid:const char *', 'ipaddr:const char *', 'prefix:unsigned int', 'hostname:const char *', 'clientid:const char *'],
    free: 'virNetworkDHCPLeaseFree',
  },
  virDomainGetSecurityLabelList: { struct: ['label:char[4097]', 'enforcing:int'], inline: true },
};

/** Copies an array of `count` structs out of libvirt's memory, then releases each element and the array. */
function decodeList(native: Native, fnName: string, array: bigint | null, count: number): Record<string, unknown>[] {
  if (!array) return [];
  const spec = LISTS[fnName]!;
  const sname = `lq_${fnName}`;
  native.struct(sname, spec.struct);
  try {
    if (spec.inline) return count > 0 ? (native.decodeStruct(array, sname, count) as unknown as Record<string, unknown>[]) : [];
    const ptrs = native.decodePointers<bigint>(array as never, count);
    const free = native.bind(0, `void ${spec.free}(void *p)`);
    return ptrs.map((p) => {
      try {
        const row = native.decodeStruct(p, sname);
        if (fnName === 'virDomainGetFSInfo') {
          const n = Number(row.ndevAlias);
          row.devAlias = n > 0 ? native.decodePointers<bigint>(row.devAlias as never, n).map((x) => native.decodeString(x)) : [];
          delete row.ndevAlias;
        } else if (fnName === 'virDomainGetIOThreadInfo') {
          row.cpumap = row.cpumap ? native.copyBytes(row.cpumap as bigint, Number(row.cpumaplen)) : new Uint8Array(0);
          delete row.cpumaplen;
        } else if (fnName === 'virDomainInterfaceAddresses') {
          native.struct('lqIPAddress', ['type:int', 'addr:const char *', 'prefix:unsigned int']);
          const n = Number(row.naddrs);
          row.addrs = n > 0 && row.addrs ? native.decodeStruct(row.addrs as bigint, 'lqIPAddress', n) : [];
          delete row.naddrs;
        }
        return row;
      } finally {
        free(p);
      }
    });
  } finally {
    native.api.free(array);
  }
}
