/**
 * libvirt marks a domain "tainted" when it is used beyond its support contract: `custom-argv` when
 * <qemu:commandline> is present at start, `custom-monitor` after the first passthrough command. The
 * marks are read from virDomainGetMessages and reported once per guest and mark, never per call
 * (repeated per-call warnings are how KubeVirt's logs flooded).
 */
export interface Taint {
  /** libvirt's taint flag when recognised (custom-monitor, custom-argv, …), else the message text. */
  flag: string;
  /** libvirt's message, e.g. "tainted: custom monitor control commands issued". */
  message: string;
}

export interface TaintReport {
  guest: string;
  /** Marks not reported before for this guest. */
  taints: Taint[];
}

const KNOWN: Array<[RegExp, string]> = [
  [/custom monitor control commands/i, 'custom-monitor'],
  [/custom configuration parameters/i, 'custom-argv'],
  [/custom guest agent control commands/i, 'custom-ga-command'],
  [/elevated privileges|high privileges/i, 'high-privileges'],
  [/hook scripts/i, 'hook'],
];

/** The taint marks among libvirt's domain messages (deprecation messages are skipped). */
export function parseTaints(messages: readonly string[]): Taint[] {
  const out: Taint[] = [];
  for (const message of messages) {
    if (!/^\s*tainted\s*:/i.test(message)) continue;
    const known = KNOWN.find(([re]) => re.test(message));
    out.push({ flag: known ? known[1] : message.replace(/^\s*tainted\s*:\s*/i, '').trim(), message });
  }
  return out;
}

/** Remembers what was reported for one guest, so each mark is reported once. */
export class TaintTracker {
  private readonly seen = new Set<string>();

  /** The marks in `messages` that are new since the last call. */
  fresh(messages: readonly string[]): Taint[] {
    const taints = parseTaints(messages).filter((t) => !this.seen.has(t.flag));
    for (const t of taints) this.seen.add(t.flag);
    return taints;
  }
}
