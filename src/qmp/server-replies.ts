/**
 * What a QMP server says back, exactly as QEMU 7.2 words and writes it: the checks QEMU makes on a
 * parsed request before running it, the checks on qmp_capabilities's arguments, and the reply format.
 */
import { qemuKeyOrder, qemuQuote } from './qemu-json.js';
import type { QmpMessage } from './transport.js';

export type QmpServerReply = { return: unknown } | { error: { class: string; desc: string } };

/**
 * QEMU's qmp_dispatch_check_obj(): the members of a parsed request visited in QEMU's hash order, the
 * first problem reported (its description), or undefined. `exec-oob` counts only once oob is enabled.
 */
export function requestProblem(msg: QmpMessage, oobEnabled: boolean): string | undefined {
  if (isPlainRequest(msg)) return undefined;
  let execKey: string | undefined;
  for (const key of qemuKeyOrder(Object.keys(msg))) {
    const v = msg[key];
    if (key === 'execute' || (key === 'exec-oob' && oobEnabled)) {
      if (typeof v !== 'string') return `QMP input member '${key}' must be a string`;
      if (execKey) return `QMP input member '${key}' clashes with '${execKey}'`;
      execKey = key;
    } else if (key === 'arguments') {
      if (!isPlainObject(v)) return "QMP input member 'arguments' must be an object";
    } else if (key !== 'id') {
      return `QMP input member '${key}' is unexpected`;
    }
  }
  return execKey ? undefined : "QMP input lacks member 'execute'";
}

/**
 * The common request, `execute` (a string) with at most `arguments` (an object) and `id`: nothing to
 * report, so QEMU's member order (which only decides which problem is reported first) is not needed.
 */
function isPlainRequest(msg: QmpMessage): boolean {
  let hasExecute = false;
  for (const key in msg) {
    if (key === 'execute') {
      if (typeof msg.execute !== 'string') return false;
      hasExecute = true;
    } else if (key === 'arguments') {
      if (!isPlainObject(msg.arguments)) return false;
    } else if (key !== 'id') return false;
  }
  return hasExecute;
}

/** qmp_capabilities's arguments, checked like QEMU's generated marshaller. */
export function capabilitiesArgsProblem(args: Record<string, unknown> | undefined): string | undefined {
  for (const key of Object.keys(args ?? {})) if (key !== 'enable') return `Parameter '${key}' is unexpected`;
  const enable = args?.enable;
  if (enable === undefined) return undefined;
  if (!Array.isArray(enable)) return "Invalid parameter type for 'enable', expected: array";
  for (let i = 0; i < enable.length; i++) {
    const cap: unknown = enable[i];
    if (typeof cap !== 'string') return `Invalid parameter type for 'enable[${i}]', expected: string`;
    if (cap !== 'oob') return `Parameter 'enable[${i}]' does not accept value '${cap}'`;
  }
  return undefined;
}

/** `{"return": VALUE, "id": …}` with VALUE's JSON text as given, CRLF-terminated. */
export function returnReplyText(valueJson: string, idJson: string | undefined): string {
  return idJson === undefined ? `{"return": ${valueJson}}\r\n` : `{"return": ${valueJson}, "id": ${idJson}}\r\n`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A reply as QEMU writes it: `{"return": …, "id": …}` or `{"id": …, "error": {"class": …, "desc": …}}`, CRLF-terminated. */
export function replyText(reply: QmpServerReply, idJson: string | undefined): string {
  if ('return' in reply) return returnReplyText(JSON.stringify(reply.return ?? {}), idJson);
  const err = `"error": {"class": ${qemuQuote(String(reply.error.class))}, "desc": ${qemuQuote(String(reply.error.desc))}}`;
  return idJson === undefined ? `{${err}}\r\n` : `{"id": ${idJson}, ${err}}\r\n`;
}
