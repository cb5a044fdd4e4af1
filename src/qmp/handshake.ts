import { QmpProtocolError } from './errors.js';
import type { QmpMessage } from './transport.js';

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  /** Capabilities the server offered (QEMU: `oob`). */
  capabilities: string[];
}

/** The greeting in a `{"QMP": …}` message; undefined when it is malformed. */
export function parseGreeting(msg: QmpMessage): QmpGreeting | undefined {
  const qmp = msg.QMP;
  if (!qmp || typeof qmp !== 'object') return undefined;
  const g = qmp as { version?: { qemu?: Partial<Record<'major' | 'minor' | 'micro', unknown>>; package?: unknown }; capabilities?: unknown };
  const q = g.version?.qemu;
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  return {
    version: { qemu: { major: num(q?.major), minor: num(q?.minor), micro: num(q?.micro) }, package: typeof g.version?.package === 'string' ? g.version.package : '' },
    capabilities: Array.isArray(g.capabilities) ? g.capabilities.filter((c): c is string => typeof c === 'string') : [],
  };
}

export interface NegotiateOptions {
  /** Ask for out-of-band execution; it is enabled only when the greeting offers it too. */
  oob: boolean;
  /** Sends `qmp_capabilities` with these arguments and settles with its reply (rejects on an error reply). */
  run(args: { enable: string[] } | undefined): Promise<unknown>;
}

/**
 * The second half of QMP's handshake, after the greeting: leaves capabilities negotiation mode with
 * `qmp_capabilities`. Shared by the client and by transports that negotiate themselves (a monitor that
 * must outlive QEMU restarts). Resolves to whether out-of-band execution is on.
 */
export async function negotiate(greeting: QmpGreeting, options: NegotiateOptions): Promise<{ oob: boolean }> {
  const oob = options.oob && greeting.capabilities.includes('oob');
  await options.run(oob ? { enable: ['oob'] } : undefined);
  return { oob };
}

/** The greeting a connection is waiting for: one `{"QMP": …}` message, accepted once. */
export class GreetingWaiter {
  readonly promise: Promise<QmpGreeting>;
  private settle: { resolve(g: QmpGreeting): void; reject(e: unknown): void } | undefined;

  constructor() {
    this.promise = new Promise<QmpGreeting>((resolve, reject) => (this.settle = { resolve, reject }));
    this.promise.catch(() => {}); // observed by the opener; no unhandled rejection if opening fails first
  }

  /** Takes a greeting message; false when none was expected any more (a second greeting). */
  offer(msg: QmpMessage): boolean {
    const settle = this.settle;
    if (!settle) return false;
    this.settle = undefined;
    const g = parseGreeting(msg);
    if (g) settle.resolve(g);
    else settle.reject(new QmpProtocolError(`malformed QMP greeting: ${JSON.stringify(msg).slice(0, 200)}`));
    return true;
  }

  /** Stops waiting (the connection failed or closed first). */
  reject(err: unknown): void {
    this.settle?.reject(err);
    this.settle = undefined;
  }
}
