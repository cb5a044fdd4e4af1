/**
 * `libqemu events [NAME…]`: follow QMP events (and, for a libvirt guest, libvirt's lifecycle events
 * and libqemu's notices) as readable lines or JSON lines. Upper-case names filter QMP events
 * (STOP, BLOCK_JOB_COMPLETED), lower-case ones libvirt's (started, suspended).
 */
import type { Command } from 'commander';
import { uncheckedEventNames, type GuestEvent } from '../../hybrid/index.js';
import type { QmpEvent } from '../../qmp/command-map.js';
import { redact } from '../../qmp/redact.js';
import { UsageError } from '../exit-codes.js';
import { action, type CliCommandModule } from '../command.js';
import type { Session } from '../session.js';

interface EventsOptions {
  count?: string;
  for?: string;
  libvirt: boolean;
  qmp: boolean;
}

/** One event, whatever its source, as printed. */
interface Printed {
  /** libvirt's and QEMU's events count for -n; libqemu's own notices (taint, reconnects) do not. */
  notice: boolean;
  source: string;
  name: string;
  time: Date;
  json: Record<string, unknown>;
  detail: string;
}

const QMP_NAME = /^[A-Z0-9_]+$/;

export const eventsCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('events')
      .description('follow QMP events (and libvirt lifecycle events for a guest), filtered by name')
      .argument('[names...]', 'only these events: QMP names in upper case (STOP), libvirt lifecycle names and libqemu notices in lower case (started, taint, qmp-disconnected)')
      .option('-n, --count <n>', "exit after this many libvirt or QMP events (libqemu's notices do not count)")
      .option('--for <seconds>', 'exit after following this long')
      .option('--no-libvirt', 'no libvirt events (guests only)')
      .option('--no-qmp', 'no QMP events (guests only)')
      .addHelpText(
        'after',
        `
Examples:
  libqemu -d web1 events                      # everything until Ctrl-C
  libqemu -d web1 events STOP RESUME started
  libqemu --socket /tmp/q.sock --json events -n 1 SHUTDOWN`,
      )
      .action(
        action(ctx, async (session, cmd: Command, names: string[]) => {
          const opts = cmd.opts<EventsOptions>();
          const count = positive(opts.count, '--count', true);
          const forSeconds = positive(opts.for, '--for', false);
          const ac = new AbortController();
          const onSignal = () => ac.abort();
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          const timer = forSeconds === undefined ? undefined : setTimeout(() => ac.abort(), forSeconds * 1000);
          try {
            const events = session.options.socket ? await socketEvents(session, names, ac.signal) : await guestEvents(session, names, opts, ac.signal);
            // on stderr even with --json: scripts may wait for it to know the subscription is in place
            if (!session.out.quiet) session.out.io.stderr.write(`following events of ${session.describeTarget()}${names.length ? ` (${names.join(', ')})` : ''}; Ctrl-C to stop\n`);
            let seen = 0;
            for await (const ev of events) {
              session.out.either(`${ev.time.toISOString()} ${ev.source} ${ev.name}${ev.detail ? ` ${ev.detail}` : ''}`, ev.json);
              if (count !== undefined && !ev.notice && ++seen >= count) break;
            }
          } finally {
            if (timer) clearTimeout(timer);
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
        }),
      );
  },
};

function positive(value: string | undefined, flag: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  return n;
}

function qmpTime(ts: QmpEvent['timestamp']): Date {
  return ts.seconds >= 0 ? new Date(ts.seconds * 1000 + Math.floor(ts.microseconds / 1000)) : new Date();
}

/** QMP events of a raw socket. */
async function socketEvents(session: Session, names: string[], signal: AbortSignal): Promise<AsyncIterable<Printed>> {
  const client = await session.qmp({ validate: false });
  const queue: AsyncIterable<QmpEvent<string, unknown>> = names.length
    ? client.untyped.events({ names, signal, overflow: 'drop-oldest' })
    : client.events({ signal, overflow: 'drop-oldest' });
  return (async function* () {
    for await (const ev of queue) {
      const data = ev.data === undefined ? undefined : redact(ev.data);
      yield {
        notice: false,
        source: 'qmp',
        name: ev.event,
        time: qmpTime(ev.timestamp),
        json: { source: 'qmp', event: ev.event, ...(data === undefined ? {} : { data }), timestamp: ev.timestamp },
        detail: data === undefined ? '' : JSON.stringify(data),
      };
    }
  })();
}

/** libvirt + QMP events of a guest, through the facade's unified stream. */
async function guestEvents(session: Session, names: string[], opts: EventsOptions, signal: AbortSignal): Promise<AsyncIterable<Printed>> {
  const guest = await session.guest();
  const qmpNames = names.filter((n) => QMP_NAME.test(n));
  const libvirtNames = new Set(names.filter((n) => !QMP_NAME.test(n)));
  const filtered = names.length > 0;
  const wantQmp = opts.qmp && (!filtered || qmpNames.length > 0);
  const wantLibvirt = opts.libvirt && (!filtered || libvirtNames.size > 0);
  if (!wantQmp && !wantLibvirt) throw new UsageError('nothing to follow: every source is switched off or filtered out', { hint: 'QMP event names are upper case (STOP), libvirt ones lower case (started)' });
  const stream = guest.events({
    qmp: wantQmp ? (qmpNames.length ? uncheckedEventNames(qmpNames) : true) : false,
    libvirt: wantLibvirt ? ['lifecycle', 'reboot'] : false,
    via: session.options.via,
    overflow: 'drop-oldest',
    signal,
  });
  await stream.ready;
  return (async function* () {
    for await (const ev of stream as AsyncIterable<GuestEvent>) {
      const printed = printGuestEvent(ev);
      // QMP names were filtered at the source; libvirt's and libqemu's own notices (taint, qmp-disconnected) here
      if (filtered && ev.source !== 'qmp' && !libvirtNames.has(printed.name)) continue;
      // the session prints the taint notice once (on stderr, --quiet hides it): not again as an event
      if (!filtered && ev.kind === 'taint') continue;
      yield printed;
    }
  })();
}

function printGuestEvent(ev: GuestEvent): Printed {
  const json = redact({ ...ev, at: ev.at.toISOString() }) as Record<string, unknown>;
  switch (ev.kind) {
    case 'qmp':
      return { notice: false, source: `qmp(${ev.route})`, name: ev.event, time: qmpTime(ev.timestamp), json, detail: ev.data === undefined ? '' : JSON.stringify(redact(ev.data)) };
    case 'lifecycle':
      return { notice: false, source: 'libvirt', name: ev.event, time: ev.at, json, detail: ev.detail };
    case 'reboot':
      return { notice: false, source: 'libvirt', name: 'reboot', time: ev.at, json, detail: '' };
    case 'agent-lifecycle':
      return { notice: false, source: 'libvirt', name: 'agent-lifecycle', time: ev.at, json, detail: `${ev.state} (${ev.reason})` };
    case 'qmp-disconnected':
      return { notice: true, source: 'libqemu', name: 'qmp-disconnected', time: ev.at, json, detail: ev.reason };
    case 'qmp-reconnected':
      return { notice: true, source: 'libqemu', name: 'qmp-reconnected', time: ev.at, json, detail: `after ${ev.gapMs} ms` };
    case 'taint':
      return { notice: true, source: 'libqemu', name: 'taint', time: ev.at, json, detail: ev.taints.map((t) => t.flag).join(', ') };
    case 'libvirt-gap':
      return { notice: true, source: 'libqemu', name: 'libvirt-gap', time: ev.at, json, detail: `libvirt connection lost ${ev.since.toISOString()} – ${ev.until.toISOString()}` };
  }
}
