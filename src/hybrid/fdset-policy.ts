/**
 * The ownership policy's rule for QEMU's fd sets (add-fd, remove-fd) and named fds (getfd, closefd).
 * libvirt passes fds to QEMU in fd sets of its own, numbered 0, 1, 2… (it fails a hotplug whose next
 * id is taken), and QEMU's fd sets belong to the whole process, whatever monitor created them. So a
 * client may create fd sets under ids nobody uses, add to and remove the ones it created, and look at
 * all of them (query-fdsets is read-only); it may not touch any other set. Named fds (getfd) live on
 * the monitor they came through: a client closes only names it passed itself.
 */
import { PolicyError } from './errors.js';

/** One fd set as query-fdsets lists it. */
export interface FdsetInfo {
  'fdset-id': number;
  fds?: { fd: number; opaque?: string }[];
}

/** query-fdsets through the client the policy guards (for the checks that must look at QEMU). */
export type QueryFdsets = () => Promise<FdsetInfo[]>;

/** The fd commands this rule governs. */
export const FD_COMMANDS: ReadonlySet<string> = new Set(['add-fd', 'remove-fd', 'getfd', 'closefd']);

/** The classification note for each (what is allowed), shown by classifyCommand. */
export const FD_NOTES: ReadonlyMap<string, string> = new Map([
  ['add-fd', 'allowed with an fdset-id of your own that no fd set uses yet (e.g. 1000 and up), or one you created; never into libvirt\'s fd sets'],
  ['remove-fd', 'allowed on fd sets this client created with add-fd; libvirt\'s fd sets are refused'],
  ['getfd', 'passes: the named fd is this client\'s; closefd may then close it'],
  ['closefd', 'allowed for names this client passed with getfd'],
]);

const OWN_RANGE_HINT = 'pick an fdset-id of your own above the ones libvirt counts up from 0 (e.g. 1000 and up)';

/** Which fd sets and named fds one client created, and the checks against them. */
export class FdSetOwnership {
  private readonly fdsets = new Set<number>();
  private readonly fdNames = new Set<string>();

  /** The fd-set ids this client created (and has not removed), ascending. */
  get own(): number[] {
    return [...this.fdsets].sort((a, b) => a - b);
  }

  /**
   * What can be decided without asking QEMU: throws PolicyError, or returns whether QEMU must be asked
   * (add-fd under an id this client did not create: refused if some fd set already has it).
   */
  check(command: string, args: Record<string, unknown> | undefined): 'ok' | 'ask-qemu' {
    switch (command) {
      case 'add-fd': {
        const id = args?.['fdset-id'];
        if (id === undefined) {
          throw refusal(command, {
            reason: "without an fdset-id QEMU picks the lowest free id, which is the id libvirt gives its next fd set (libvirt's hotplug then fails: 'fdset is already in use')",
            allowed: `add-fd with an fdset-id of your own: ${OWN_RANGE_HINT}`,
            caller: this.own,
          });
        }
        return typeof id === 'number' && this.fdsets.has(id) ? 'ok' : 'ask-qemu';
      }
      case 'remove-fd': {
        const id = args?.['fdset-id'];
        if (typeof id === 'number' && this.fdsets.has(id)) return 'ok';
        return 'ask-qemu'; // refused either way; QEMU's list makes the refusal say whose sets there are
      }
      case 'closefd': {
        const name = args?.fdname;
        if (typeof name === 'string' && this.fdNames.has(name)) return 'ok';
        throw refusal(command, {
          reason: `the fd named ${JSON.stringify(name)} was not passed by this client (named fds on libvirt's monitor are libvirt's)`,
          allowed: `closefd on the names this client passed with getfd${this.fdNames.size ? ` (${[...this.fdNames].map((n) => JSON.stringify(n)).join(', ')})` : ' (none yet)'}`,
          caller: this.own,
        });
      }
      default:
        return 'ok';
    }
  }

  /** The part that asks QEMU: `query` lists the fd sets; throws PolicyError when the command must not pass. */
  async checkWithQemu(command: string, args: Record<string, unknown> | undefined, query: QueryFdsets | undefined): Promise<void> {
    const id = args?.['fdset-id'];
    const existing = query ? (await query()).map((s) => s['fdset-id']) : undefined;
    const others = existing?.filter((n) => !this.fdsets.has(n)).sort((a, b) => a - b);
    if (command === 'add-fd') {
      if (existing === undefined || !existing.includes(id as number)) return; // a new fd set: becomes this client's
      throw refusal(command, {
        reason: `fd set ${String(id)} exists and was not created by this client (fd sets of libvirt or other clients: ${list(others)}; yours: ${list(this.own)})`,
        allowed: `add-fd into a new fd set (${OWN_RANGE_HINT}) or into one of yours`,
        caller: this.own,
        others: others ?? [],
      });
    }
    throw this.removalRefused(id, existing);
  }

  /** The refusal of remove-fd on a set this client did not create; `existing`: QEMU's fd-set ids, when known. */
  removalRefused(id: unknown, existing?: readonly number[]): PolicyError {
    const others = existing?.filter((n) => !this.fdsets.has(n)).sort((a, b) => a - b);
    const where = existing === undefined ? '' : existing.includes(id as number) ? '' : ' (QEMU has no such fd set)';
    return refusal('remove-fd', {
      reason: `fd set ${JSON.stringify(id)} was not created by this client${where}: fd sets of libvirt or other clients: ${others ? list(others) : 'not asked'}; yours: ${list(this.own)}`,
      allowed: 'remove-fd on the fd sets this client created with add-fd; libvirt removes its own when it unplugs the device that uses them',
      caller: this.own,
      others: others ?? [],
    });
  }

  /** After a command succeeded: what it created or removed. `query` tells whether a partly emptied set is gone. */
  async record(command: string, args: Record<string, unknown> | undefined, value: unknown, query: QueryFdsets | undefined): Promise<void> {
    if (command === 'add-fd') {
      const id = (value as { 'fdset-id'?: unknown } | undefined)?.['fdset-id'];
      if (typeof id === 'number') this.fdsets.add(id);
    } else if (command === 'remove-fd') {
      const id = args?.['fdset-id'];
      if (typeof id !== 'number') return;
      // The set is gone only once QEMU no longer lists it: one fd of several was removed, or a block
      // node still uses it (QEMU keeps it until then). Without QEMU's answer, a whole-set removal counts.
      const sets = query ? await query().catch(() => undefined) : undefined;
      if (sets ? !sets.some((s) => s['fdset-id'] === id) : args?.fd === undefined) this.fdsets.delete(id);
    } else if (command === 'getfd' && typeof args?.fdname === 'string') {
      this.fdNames.add(args.fdname);
    } else if (command === 'closefd' && typeof args?.fdname === 'string') {
      this.fdNames.delete(args.fdname);
    }
  }
}

function list(ids: readonly number[] | undefined): string {
  return ids && ids.length > 0 ? ids.join(', ') : 'none';
}

function refusal(command: string, r: { reason: string; allowed: string; caller: number[]; others?: number[] }): PolicyError {
  return new PolicyError({ command, reason: r.reason, instead: r.allowed, fdsets: { caller: r.caller, others: r.others ?? [] } });
}
