/**
 * Validates the arguments of a generated call on the main thread and turns them into what the worker
 * passes to C (objects → pointers, typed-parameter objects → entries), so that a wrong argument fails
 * here with an InvalidArgumentError naming the call and the argument, not inside koffi.
 *
 * Tags (one per JS-visible argument, comma-separated, each optionally `:name`): i int, u unsigned, I long long, U unsigned long
 * long, d double, s string, s? string or null, o object, o? object or null, O objects, p typed params,
 * S strings, N numbers, B bytes (Buffer or Uint8Array).
 */
import { InvalidArgumentError } from '../common/errors.js';
import { TYPED_PARAM_FIELDS } from '../generated/libvirt/typed-param-fields.js';
import { LibvirtObject } from './object.js';
import { validateTypedParams, type TypedParam } from './typed-params.js';
import type { TypedParamsInput } from './object.js';

function bad(c: string, arg: number | string, want: string, got: unknown, opaque = false): never {
  // byte arguments may be secrets (virSecretSetValue): say what they were, never what they held
  const shown =
    typeof got === 'string' ? (opaque ? `a string of ${got.length} characters` : JSON.stringify(got.slice(0, 40))) : typeof got === 'object' ? (got === null ? 'null' : got.constructor?.name ?? 'object') : opaque ? typeof got : String(got);
  const which = typeof arg === 'number' ? `argument ${arg + 1}` : arg;
  throw new InvalidArgumentError(`${c}: ${which} must be ${want}, got ${shown}`, {
    hint: `see the method's documentation (libvirt's ${c})`,
  });
}

function integer(c: string, i: number | string, v: unknown, min: number | bigint, max: number | bigint, want: string): number | bigint {
  if (typeof v === 'bigint') {
    if (v < BigInt(min) || v > BigInt(max)) bad(c, i, want, v);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < Number(min) || v > Number(max)) bad(c, i, want, v);
  return v;
}

/** A plain object becomes entries; each field's type comes from libvirt's documentation of that field. */
export function typedParamEntries(c: string, input: TypedParamsInput): TypedParam[] {
  if (Array.isArray(input)) {
    validateTypedParams(input as TypedParam[]);
    return input as TypedParam[];
  }
  if (input === null || typeof input !== 'object') bad(c, 0, 'typed parameters (an object or { field, type, value } entries)', input);
  const out: TypedParam[] = [];
  for (const [field, value] of Object.entries(input as Record<string, unknown>)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      const known = TYPED_PARAM_FIELDS[field];
      let entry: TypedParam;
      if (typeof v === 'string') entry = { field, type: 'string', value: v };
      else if (typeof v === 'boolean') entry = { field, type: 'boolean', value: v };
      else if (typeof v === 'bigint') entry = { field, type: known === 'llong' ? 'llong' : 'ullong', value: v };
      else if (typeof v === 'number' && known && known !== 'string' && known !== 'boolean') entry = { field, type: known, value: v } as TypedParam;
      else if (typeof v === 'number' && !Number.isInteger(v)) entry = { field, type: 'double', value: v };
      else if (typeof v === 'number') entry = { field, type: v < 0 ? 'llong' : 'ullong', value: v };
      else {
        throw new InvalidArgumentError(`${c}: typed parameter ${field} has an unsupported value ${String(v)}`, {
          hint: 'use numbers, bigints, booleans or strings (arrays of strings for repeated fields)',
        });
      }
      out.push(entry);
    }
  }
  validateTypedParams(out);
  return out;
}

/** One JS-visible argument of a call: its tag, and how errors name it (`flags`, or its position). */
interface ArgSpec {
  tag: string;
  name: number | string;
}

/**
 * Tag strings are constants of the generated classes: each is parsed once, not on every call, so that a
 * call allocates no strings or arrays here beyond its result (100,000 calls should leave no garbage trail).
 */
const specCache = new Map<string, readonly ArgSpec[]>();

function argSpecs(tags: string): readonly ArgSpec[] {
  let specs = specCache.get(tags);
  if (specs === undefined) {
    specs = (tags === '' ? [] : tags.split(',')).map((tagged, k) => {
      // `tag:name` from the generated classes (errors name the parameter), a bare tag from hand-written calls
      const colon = tagged.indexOf(':');
      return colon < 0 ? { tag: tagged, name: k } : { tag: tagged.slice(0, colon), name: tagged.slice(colon + 1) };
    });
    specCache.set(tags, specs);
  }
  return specs;
}

export function prepareArgs(c: string, tags: string, args: unknown[]): unknown[] {
  const specs = argSpecs(tags);
  // args may start with the object's own pointer, which has no tag
  const offset = args.length - specs.length;
  if (offset < 0) throw new InvalidArgumentError(`${c}: expects ${specs.length} arguments, got ${args.length}`, { hint: `see the method's documentation (libvirt's ${c})` });
  const out = new Array<unknown>(args.length);
  for (let i = 0; i < offset; i++) out[i] = args[i];
  for (let k = 0; k < specs.length; k++) {
    const { tag, name: j } = specs[k]!;
    const i = k + offset;
    const v = args[i];
    switch (tag) {
      case 'i':
        out[i] = integer(c, j, v, -(2 ** 31), 2 ** 31 - 1, 'a 32-bit integer');
        break;
      case 'u':
        out[i] = integer(c, j, v, 0, 2 ** 32 - 1, 'a non-negative 32-bit integer');
        break;
      case 'I':
        out[i] = integer(c, j, v, -(2n ** 63n), 2n ** 63n - 1n, 'an integer or bigint');
        break;
      case 'U':
        out[i] = integer(c, j, v, 0, 2n ** 64n - 1n, 'a non-negative integer or bigint');
        break;
      case 'd':
        if (typeof v !== 'number' || Number.isNaN(v)) bad(c, j, 'a number', v);
        out[i] = v;
        break;
      case 's':
        if (typeof v !== 'string') bad(c, j, 'a string', v);
        out[i] = v;
        break;
      case 's?':
        if (v !== null && v !== undefined && typeof v !== 'string') bad(c, j, 'a string or null', v);
        out[i] = v ?? null;
        break;
      case 'o':
      case 'o?':
        if ((v === null || v === undefined) && tag === 'o?') out[i] = null;
        else if (v instanceof LibvirtObject) out[i] = v.pointer;
        else bad(c, j, 'a libvirt object from this connection', v);
        break;
      case 'O':
        if (!Array.isArray(v) || !v.every((x) => x instanceof LibvirtObject)) bad(c, j, 'an array of libvirt objects', v);
        out[i] = (v as LibvirtObject[]).map((x) => x.pointer);
        break;
      case 'p':
        out[i] = typedParamEntries(c, v as TypedParamsInput);
        break;
      case 'S':
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(c, j, 'an array of strings', v);
        out[i] = v;
        break;
      case 'N':
        if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) bad(c, j, 'an array of integers', v);
        out[i] = v;
        break;
      case 'B':
        if (!(v instanceof Uint8Array)) bad(c, j, 'a Buffer or Uint8Array', v, true);
        out[i] = v;
        break;
      default:
        throw new Error(`${c}: unknown argument tag ${tag}`);
    }
  }
  return out;
}
