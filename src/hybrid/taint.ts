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

/**
 * A guest's taint reporting: libvirt marks the guest when QEMU starts (custom-argv) and on the first
 * passthrough command (custom-monitor), so one look per route and QEMU run is enough; each mark is
 * reported once, as a notice on the guest's event streams and to the hypervisor's `onTaint`.
 */
export class GuestTaint {
  private readonly tracker = new TaintTracker();
  private readonly checked = new Set<string>();

  constructor(
    private readonly options: {
      guest: string;
      /** virDomainGetMessages of the guest. */
      messages: () => Promise<string[]>;
      /** Receives the marks not reported before (never throws back into the caller). */
      report: (report: TaintReport) => void;
    },
  ) {}

  /** Looks once per route and QEMU run (the first client on a route is when a new mark can appear). */
  async checkRoute(route: string): Promise<void> {
    if (this.checked.has(route)) return;
    this.checked.add(route);
    await this.check();
  }

  /** QEMU started again: every route is looked at once more. */
  newRun(): void {
    this.checked.clear();
  }

  /** Reads the marks now and reports the new ones; a failed read reports nothing. */
  async check(): Promise<void> {
    const fresh = this.tracker.fresh(await this.options.messages().catch(() => [] as string[]));
    if (fresh.length > 0) this.options.report({ guest: this.options.guest, taints: fresh });
  }
}
