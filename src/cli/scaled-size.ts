/**
 * virsh's scaled integers (`setmem web1 512M`): a number with an optional unit, KiB when none is given.
 * One-letter units and `…iB` are powers of 1024, `…B` (KB, MB…) powers of 1000, `b`/`bytes` are bytes.
 */
import { UsageError } from './exit-codes.js';

const POWERS = 'kmgtpe';

/** `text` in KiB, rounded up as virsh does; throws a UsageError naming `what` when it is not a size. */
export function parseKiB(text: string, what: string): number {
  const m = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  const bad = (): never => {
    throw new UsageError(`${what}: ${JSON.stringify(text)} is not a size`, { hint: 'give a whole number with an optional unit: 524288 (KiB), 512M, 512MiB, 1G, 536870912b' });
  };
  if (!m) return bad();
  const unit = m[2]!.toLowerCase();
  let scale: number;
  if (unit === '') scale = 1024;
  else if (unit === 'b' || unit === 'byte' || unit === 'bytes') scale = 1;
  else {
    const power = POWERS.indexOf(unit[0]!) + 1;
    const rest = unit.slice(1);
    if (power === 0 || (rest !== '' && rest !== 'ib' && rest !== 'b')) return bad();
    scale = (rest === 'b' ? 1000 : 1024) ** power;
  }
  const kib = Math.ceil((Number(m[1]) * scale) / 1024);
  if (!Number.isSafeInteger(kib) || kib < 1) {
    throw new UsageError(`${what}: ${JSON.stringify(text)} is out of range`, { hint: 'give at least 1 KiB' });
  }
  return kib;
}
