/**
 * `libqemu migrate --domain D --to URI`: live migration through libvirt (guest.migrate()), with QEMU's
 * own knobs, a live progress bar on a terminal (pass, percent of the pass, rate, remaining), `--json`
 * progress lines for scripts, a watchdog, and Ctrl-C aborting cleanly (the guest stays on the source).
 */
import type { Command } from 'commander';
import type { MigrateOptions, QemuParameterValue } from '../../migration/options.js';
import type { MigrationProgress } from '../../migration/progress.js';
import type { WatchdogOptions } from '../../migration/watchdog.js';
import { action, type CliCommandModule } from '../command.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import type { Session } from '../session.js';

interface MigrateCliOptions {
  to: string;
  bandwidth?: string;
  downtime?: string;
  deadline?: string;
  onDeadline: string;
  tunnelled?: boolean;
  migrateUri?: string;
  listenAddress?: string;
  persistent?: boolean;
  undefineSource?: boolean;
  qmpSocket?: string;
  param?: string[];
}

/** Exit code of a migration cancelled with Ctrl-C (128 + SIGINT, as shells report it). */
const EXIT_INTERRUPTED = 130;

export const migrateCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('migrate')
      .description('live-migrate a libvirt guest to another libvirtd (peer-to-peer), with progress and a watchdog')
      .argument('[guest]', 'guest name or UUID (default: --domain)')
      .requiredOption('--to <uri>', 'the destination libvirtd, e.g. qemu+ssh://host2/system')
      .option('--bandwidth <MiB/s>', "libvirt's bandwidth limit, whole MiB/s")
      .option('--downtime <ms>', "QEMU's downtime-limit (the longest pause allowed at the switch-over)")
      .option('--deadline <seconds>', 'watchdog: act if the migration has not finished by then')
      .option('--on-deadline <action>', 'watchdog action: abort | pause (the guest, so it finishes) | raise-downtime (step by step)', 'abort')
      .option('--tunnelled', 'carry the migration stream through the libvirtd connections (no port)')
      .option('--migrate-uri <uri>', "QEMU's migration URI: tcp://HOST[:PORT] or unix:///path")
      .option('--listen-address <addr>', 'the address the destination QEMU listens on')
      .option('--persistent', 'define the guest on the destination (default: when it is defined here)')
      .option('--no-undefine-source', 'keep the definition on the source')
      .option('--qmp-socket <path>', "where the guest's second QMP monitor listens on the destination")
      .option('--param <name=value>', 'a QEMU migration parameter, set through QMP once the migration starts (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .addHelpText(
        'after',
        `
Progress goes to stderr as a bar on a terminal; with --json every snapshot is one JSON line on stdout
({"progress": …}) and the outcome is the last line ({"result": …}, or {"error": …} on stderr). Ctrl-C
aborts the migration; the guest keeps running on the source. Exit codes: 0 migrated, 3 the migration
failed (the guest stays on the source), 130 aborted with Ctrl-C.

Examples:
  libqemu -c qemu:///system migrate web1 --to qemu+ssh://host2/system --bandwidth 100
  libqemu -d web1 migrate --to qemu+ssh://host2/system --deadline 60 --on-deadline pause
  libqemu -d web1 --json migrate --to qemu+ssh://host2/system --param max-bandwidth=52428800`,
      )
      .action(
        action(ctx, async (session, cmd: Command, name: string | undefined) => {
          const opts = cmd.opts<MigrateCliOptions>();
          const options = toMigrateOptions(opts);
          const guest = await session.guest(name ?? session.options.domain);
          const interrupted = new AbortController();
          const onSignal = (): void => {
            if (!interrupted.signal.aborted) session.out.note('\ninterrupted: aborting the migration (the guest stays on the source)');
            interrupted.abort();
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
          const { MigrationError } = await import('../../migration/errors.js');
          const view = await progressView(session);
          try {
            const job = guest.migrate(opts.to, { ...options, signal: interrupted.signal });
            view.update(job.current);
            job.onProgress((p) => view.update(p));
            const r = await job;
            view.stop();
            const mib = (r.stats.transferredBytes / 2 ** 20).toFixed(1);
            session.out.either(
              `${r.name}: migrated to ${r.destinationUri} in ${(r.durationMs / 1000).toFixed(2)} s (${r.stats.passes} passes, ${mib} MiB sent` +
                `${r.stats.downtimeMs === undefined ? '' : `, downtime ${r.stats.downtimeMs} ms`}${r.watchdog.pausedGuest ? ', paused by the watchdog' : ''})`,
              { result: { ...r, guest: undefined, stats: { ...r.stats, raw: undefined } } },
            );
            return ExitCode.ok;
          } catch (err) {
            view.stop();
            if (!(err instanceof MigrationError)) throw err;
            session.out.error(err);
            return interrupted.signal.aborted ? EXIT_INTERRUPTED : ExitCode.libvirt;
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
        }),
      );
  },
};

function toMigrateOptions(o: MigrateCliOptions): MigrateOptions {
  const positive = (v: string | undefined, flag: string, scale = 1): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(v)}`);
    return Math.round(n * scale);
  };
  const options: MigrateOptions = {};
  const bandwidth = positive(o.bandwidth, '--bandwidth');
  if (bandwidth !== undefined) options.bandwidthMiBs = bandwidth;
  const downtime = positive(o.downtime, '--downtime');
  if (downtime !== undefined) options.maxDowntimeMs = downtime;
  if (o.onDeadline !== 'abort' && o.onDeadline !== 'pause' && o.onDeadline !== 'raise-downtime') {
    throw new UsageError(`--on-deadline must be abort, pause or raise-downtime, got ${JSON.stringify(o.onDeadline)}`);
  }
  const deadline = positive(o.deadline, '--deadline', 1000);
  if (deadline !== undefined) options.watchdog = { deadlineMs: deadline, action: o.onDeadline } as WatchdogOptions;
  else if (o.onDeadline !== 'abort') throw new UsageError('--on-deadline needs --deadline', { hint: 'e.g. --deadline 60 --on-deadline pause' });
  if (o.tunnelled) options.tunnelled = true;
  if (o.migrateUri !== undefined) options.migrationUri = o.migrateUri;
  if (o.listenAddress !== undefined) options.listenAddress = o.listenAddress;
  if (o.persistent) options.persistent = true;
  if (o.undefineSource === false) options.undefineSource = false;
  if (o.qmpSocket !== undefined) options.destinationQmpSocket = o.qmpSocket;
  if (o.param?.length) {
    const params: Record<string, QemuParameterValue> = {};
    for (const p of o.param) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new UsageError(`--param expects name=value, got ${JSON.stringify(p)}`, { hint: 'e.g. --param downtime-limit=500' });
      const raw = p.slice(eq + 1);
      params[p.slice(0, eq)] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    }
    options.qemuParameters = params;
  }
  return options;
}

/** A bar on a terminal's stderr, JSON lines with --json, nothing otherwise (the summary says it all). */
async function progressView(session: Session): Promise<{ update(p: MigrationProgress): void; stop(): void }> {
  if (session.options.json) {
    return { update: (p) => session.out.line(JSON.stringify({ progress: p })), stop: () => undefined };
  }
  const stream = session.out.io.stderr as NodeJS.WriteStream;
  if (!stream.isTTY) return { update: () => undefined, stop: () => undefined };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { stream, format: ' {phase} pass {pass} |{bar}| {percentage}% | {rate} | {remaining} left | {elapsed} s', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      // percent of the current pass: what is no longer left to send of the guest's RAM
      const total = p.totalBytes || 1;
      const done = p.totalBytes ? Math.max(0, p.totalBytes - p.remainingBytes) : 0;
      const payload = {
        phase: p.phase.padEnd(14),
        pass: p.pass,
        rate: `${(p.bytesPerSecond / 2 ** 20).toFixed(1)} MiB/s`,
        remaining: `${(p.remainingBytes / 2 ** 20).toFixed(1)} MiB`,
        elapsed: (p.elapsedMs / 1000).toFixed(1),
      };
      if (!started) {
        bar.start(total, done, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done, payload);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
