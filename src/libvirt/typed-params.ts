/**
 * virTypedParameter arrays (migration parameters, job statistics, …) ⇄ plain JS entries. Encoding goes
 * through libvirt's own virTypedParamsAdd* (libvirt owns the memory and its layout), and the result must
 * be released with `free()` (virTypedParamsFree). Decoding copies everything out; the caller still frees
 * the array it got from libvirt. Runs wherever the native calls run (an executor worker).
 */
import type { Native, TypedParamsPtr } from '../../native/libvirt.js';
import { InvalidArgumentError } from '../common/errors.js';

export type TypedParamValue =
  | { type: 'int'; value: number }
  | { type: 'uint'; value: number }
  | { type: 'llong'; value: number | bigint }
  | { type: 'ullong'; value: number | bigint }
  | { type: 'double'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'string'; value: string };

/** One parameter; a field may repeat (e.g. migrate_disks). */
export type TypedParam = { field: string } & TypedParamValue;

/** virTypedParameterType numbers. */
const TYPE_NUMBERS = { int: 1, uint: 2, llong: 3, ullong: 4, double: 5, boolean: 6, string: 7 } as const;
const TYPE_NAMES = ['', 'int', 'uint', 'llong', 'ullong', 'double', 'boolean', 'string'] as const;

/** VIR_TYPED_PARAM_FIELD_LENGTH: field names longer than 79 bytes do not fit. */
const FIELD_MAX = 79;

export interface EncodedTypedParams {
  params: TypedParamsPtr | null;
  count: number;
  /** virTypedParamsFree; safe to call more than once. */
  free(): void;
}

function checkParam(p: TypedParam): void {
  if (typeof p.field !== 'string' || p.field === '' || Buffer.byteLength(p.field) > FIELD_MAX) {
    throw new InvalidArgumentError(`typed parameter field must be 1-${FIELD_MAX} bytes, got ${JSON.stringify(p.field)}`);
  }
  const bad = (want: string): never => {
    throw new InvalidArgumentError(`typed parameter ${p.field} (${p.type}) needs ${want}, got ${String(p.value)}`);
  };
  switch (p.type) {
    case 'int':
      if (!Number.isInteger(p.value) || p.value < -(2 ** 31) || p.value >= 2 ** 31) bad('a 32-bit signed integer');
      break;
    case 'uint':
      if (!Number.isInteger(p.value) || p.value < 0 || p.value >= 2 ** 32) bad('a 32-bit unsigned integer');
      break;
    case 'llong':
    case 'ullong': {
      const v = typeof p.value === 'bigint' ? p.value : Number.isInteger(p.value) ? BigInt(p.value) : bad('an integer or bigint');
      if (p.type === 'ullong' && (v < 0n || v >= 2n ** 64n)) bad('a 64-bit unsigned integer');
      if (p.type === 'llong' && (v < -(2n ** 63n) || v >= 2n ** 63n)) bad('a 64-bit signed integer');
      break;
    }
    case 'double':
      if (typeof p.value !== 'number') bad('a number');
      break;
    case 'boolean':
      if (typeof p.value !== 'boolean') bad('a boolean');
      break;
    case 'string':
      if (typeof p.value !== 'string') bad('a string');
      break;
    default:
      throw new InvalidArgumentError(`unknown typed parameter type ${JSON.stringify((p as { type: unknown }).type)}`, {
        hint: `use one of ${Object.keys(TYPE_NUMBERS).join(', ')}`,
      });
  }
}

/** Validates entries on any thread (call it before handing them to a worker). */
export function validateTypedParams(params: TypedParam[]): void {
  if (!Array.isArray(params)) throw new InvalidArgumentError('typed parameters must be an array of { field, type, value }');
  params.forEach(checkParam);
}

/** Builds a libvirt virTypedParameter array (release with `.free()`). */
export function encodeTypedParams(native: Native, params: TypedParam[]): EncodedTypedParams {
  validateTypedParams(params);
  const { api } = native;
  const ptr: [TypedParamsPtr | null] = [null];
  const n: [number] = [0];
  const max: [number] = [0];
  let freed = false;
  const free = (): void => {
    if (freed) return;
    freed = true;
    if (ptr[0]) api.virTypedParamsFree(ptr[0], n[0]);
  };
  try {
    for (const p of params) {
      let rc: number;
      switch (p.type) {
        case 'int': rc = api.virTypedParamsAddInt(ptr, n, max, p.field, p.value); break;
        case 'uint': rc = api.virTypedParamsAddUInt(ptr, n, max, p.field, p.value); break;
        case 'llong': rc = api.virTypedParamsAddLLong(ptr, n, max, p.field, BigInt(p.value)); break;
        case 'ullong': rc = api.virTypedParamsAddULLong(ptr, n, max, p.field, BigInt(p.value)); break;
        case 'double': rc = api.virTypedParamsAddDouble(ptr, n, max, p.field, p.value); break;
        case 'boolean': rc = api.virTypedParamsAddBoolean(ptr, n, max, p.field, p.value ? 1 : 0); break;
        case 'string': rc = api.virTypedParamsAddString(ptr, n, max, p.field, p.value); break;
      }
      if (rc < 0) {
        const e = native.lastError();
        throw new InvalidArgumentError(`typed parameter ${p.field}: ${e?.message ?? 'virTypedParamsAdd failed'}`);
      }
    }
  } catch (err) {
    free();
    throw err;
  }
  return { params: ptr[0], count: n[0], free };
}

/** Copies a libvirt virTypedParameter array out as entries (does not free it). */
export function decodeTypedParams(native: Native, params: TypedParamsPtr | Buffer | null, count: number): TypedParam[] {
  if (!params || count <= 0) return [];
  return native.decodeTypedParams(params, count).map((raw): TypedParam => {
    const type = TYPE_NAMES[raw.type];
    const field = raw.field;
    switch (type) {
      case 'int': return { field, type, value: raw.value.i };
      case 'uint': return { field, type, value: raw.value.ui };
      case 'llong': return { field, type, value: raw.value.l };
      case 'ullong': return { field, type, value: raw.value.ul };
      case 'double': return { field, type, value: raw.value.d };
      case 'boolean': return { field, type, value: raw.value.b !== 0 };
      case 'string': return { field, type, value: raw.value.s ? native.decodeString(raw.value.s) : '' };
      default: throw new Error(`libvirt returned typed parameter ${field} of unknown type ${raw.type}`);
    }
  });
}

/** Entries → `{ field: value }` (the last one wins for repeated fields): handy for job statistics. */
export function typedParamsToObject(params: TypedParam[]): Record<string, number | bigint | boolean | string> {
  const out: Record<string, number | bigint | boolean | string> = {};
  for (const p of params) out[p.field] = p.value;
  return out;
}
