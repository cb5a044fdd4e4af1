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

function bad(c: string, arg: number | string, want: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got.slice(0, 40)) : typeof got === 'object' ? (got === null ? 'null' : got.constructor?.name ?? 'object') : String(got);
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

export function prepareArgs(c: string, tags: string, args: unknown[]): unknown[] {
  const list = tags === '' ? [] : tags.split(',');
  // args may start with the object's own pointer, which has no tag
  const offset = args.length - list.length;
  const out = args.slice(0, offset);
  list.forEach((tagged, k) => {
    const i = k + offset;
    const v = args[i];
    // `tag:name` from the generated classes (errors name the parameter), a bare tag from hand-written calls
    const colon = tagged.indexOf(':');
    const tag = colon < 0 ? tagged : tagged.slice(0, colon);
    const j: number | string = colon < 0 ? k : tagged.slice(colon + 1);
    switch (tag) {
      case 'i':
        out.push(integer(c, j, v, -(2 ** 31), 2 ** 31 - 1, 'a 32-bit integer'));
        break;
      case 'u':
        out.push(integer(c, j, v, 0, 2 ** 32 - 1, 'a non-negative 32-bit integer'));
        break;
      case 'I':
        out.push(integer(c, j, v, -(2n ** 63n), 2n ** 63n - 1n, 'an integer or bigint'));
        break;
      case 'U':
        out.push(integer(c, j, v, 0, 2n ** 64n - 1n, 'a non-negative integer or bigint'));
        break;
      case 'd':
        if (typeof v !== 'number' || Number.isNaN(v)) bad(c, j, 'a number', v);
        out.push(v);
        break;
      case 's':
        if (typeof v !== 'string') bad(c, j, 'a string', v);
        out.push(v);
        break;
      case 's?':
        if (v !== null && v !== undefined && typeof v !== 'string') bad(c, j, 'a string or null', v);
        out.push(v ?? null);
        break;
      case 'o':
      case 'o?':
        if ((v === null || v === undefined) && tag === 'o?') out.push(null);
        else if (v instanceof LibvirtObject) out.push(v.pointer);
        else bad(c, j, 'a libvirt object from this connection', v);
        break;
      case 'O':
        if (!Array.isArray(v) || !v.every((x) => x instanceof LibvirtObject)) bad(c, j, 'an array of libvirt objects', v);
        out.push((v as LibvirtObject[]).map((x) => x.pointer));
        break;
      case 'p':
        out.push(typedParamEntries(c, v as TypedParamsInput));
        break;
      case 'S':
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(c, j, 'an array of strings', v);
        out.push(v);
        break;
      case 'N':
        if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) bad(c, j, 'an array of integers', v);
        out.push(v);
        break;
      case 'B':
        if (!(v instanceof Uint8Array)) bad(c, j, 'a Buffer or Uint8Array', v);
        out.push(v);
        break;
      default:
        throw new Error(`${c}: unknown argument tag ${tag}`);
    }
  });
  return out;
}
