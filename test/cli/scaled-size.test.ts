/** virsh's scaled sizes for `setmem` (src/cli/scaled-size.ts). */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/exit-codes.js';
import { parseKiB } from '../../src/cli/scaled-size.js';

describe('parseKiB', () => {
  it('reads KiB without a unit, powers of 1024 for k/M/G/T and …iB, powers of 1000 for KB/MB/GB, bytes rounded up', () => {
    const table: [string, number][] = [
      ['524288', 524288],
      ['512M', 524288],
      ['512m', 524288],
      ['512MiB', 524288],
      ['1G', 1048576],
      ['1GiB', 1048576],
      ['1000MB', Math.ceil(1e9 / 1024)],
      ['64k', 64],
      ['2KB', 2], // 2000 bytes: 1.95 KiB, rounded up as virsh does
      ['1536b', 2],
      ['1024bytes', 1],
      ['1T', 1024 ** 3],
    ];
    expect(table.map(([text]) => parseKiB(text, 'setmem'))).toEqual(table.map(([, kib]) => kib));
  });

  it('refuses what is not a size, naming the command and the text', () => {
    for (const bad of ['', '12X', '-5', '1.5G', 'M', '0', '1ZiB']) {
      expect(() => parseKiB(bad, 'setmem'), bad).toThrow(UsageError);
    }
    expect(() => parseKiB('12X', 'setmem')).toThrow('setmem: "12X" is not a size');
  });
});
