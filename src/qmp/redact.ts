/**
 * Copies a QMP message for logging with every secret-looking member (password, secret, passphrase…,
 * and the `data` of a `secret` QOM object) replaced by "<redacted>", at any depth. The original is
 * never modified and never logged.
 */
const SECRET_KEY = /passw(or)?d|secret|passphrase|private[-_]?key|^key[-_]?secret$|^token$|^cookie$|^auth[-_]?data$/i;

export const REDACTED = '<redacted>';

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export function redact<T>(value: T): T {
  return redactValue(value, 0) as T;
}

function redactValue(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 64) return REDACTED; // absurdly deep: refuse rather than risk printing anything
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  // object-add of a `secret` object carries the secret in `data`.
  const secretObject = typeof (value as { 'qom-type'?: unknown })['qom-type'] === 'string' && /secret/i.test((value as { 'qom-type': string })['qom-type']);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKey(k) || (secretObject && k === 'data') ? REDACTED : redactValue(v, depth + 1);
  }
  return out;
}
