/** virTypedParameter encode/decode through libvirt's own virTypedParamsAdd* (local calls, no connection). */
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../native/libvirt.js';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { decodeTypedParams, encodeTypedParams, typedParamsToObject, type TypedParam } from '../../src/libvirt/typed-params.js';

describe('typed parameters', () => {
  const native = loadNative();

  it('round-trips every type, repeated fields and 64-bit values', () => {
    const params: TypedParam[] = [
      { field: 'int', type: 'int', value: -5 },
      { field: 'uint', type: 'uint', value: 4_000_000_000 },
      { field: 'llong', type: 'llong', value: -(2n ** 62n) },
      { field: 'bandwidth', type: 'ullong', value: 2n ** 63n + 7n },
      { field: 'small', type: 'ullong', value: 1024 },
      { field: 'ratio', type: 'double', value: 0.25 },
      { field: 'auto', type: 'boolean', value: true },
      { field: 'migrate_disks', type: 'string', value: 'vda' },
      { field: 'migrate_disks', type: 'string', value: 'vdb' },
    ];
    const enc = encodeTypedParams(native, params);
    try {
      expect(enc.count).toBe(params.length);
      const back = decodeTypedParams(native, enc.params, enc.count);
      expect(back.map((p) => ({ ...p, value: typeof p.value === 'bigint' ? p.value : p.value }))).toEqual(
        params.map((p) => (p.type === 'llong' || p.type === 'ullong' ? { ...p, value: Number.isSafeInteger(Number(p.value)) ? Number(p.value) : BigInt(p.value) } : p)),
      );
      expect(typedParamsToObject(back)).toMatchObject({ int: -5, auto: true, migrate_disks: 'vdb' });
    } finally {
      enc.free();
      enc.free(); // idempotent
    }
  });

  it('rejects values that do not fit before calling libvirt', () => {
    expect(() => encodeTypedParams(native, [{ field: 'x', type: 'int', value: 2 ** 31 }])).toThrow(InvalidArgumentError);
    expect(() => encodeTypedParams(native, [{ field: 'x', type: 'uint', value: -1 }])).toThrow(InvalidArgumentError);
    expect(() => encodeTypedParams(native, [{ field: 'x', type: 'ullong', value: -1n }])).toThrow(InvalidArgumentError);
    expect(() => encodeTypedParams(native, [{ field: 'x'.repeat(80), type: 'int', value: 1 }])).toThrow(InvalidArgumentError);
    expect(() => encodeTypedParams(native, [{ field: 'x', type: 'nope' } as unknown as TypedParam])).toThrow(InvalidArgumentError);
  });

  it('decodes an empty array', () => {
    expect(decodeTypedParams(native, null, 0)).toEqual([]);
  });
});
