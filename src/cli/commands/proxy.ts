/**
 * `libqemu proxy --listen PATH`: serve standard QMP to any number of clients (qmp-shell, socat,
 * monitoring agents) in front of a guest (--domain: second monitor or passthrough, with the ownership
 * policy) or a raw QMP socket (--socket). Runs until interrupted or until the backend goes away.
 */
import type { Command } from 'commander';
import { PassthroughProxy } from '../../proxy/passthrough-thread/passthrough-proxy.js';
import { QmpProxy, type ProxyLogger } from '../../proxy/server.js';
import type { QmpGreeting } from '../../qmp/client.js';
import { describeRefusal, refusalModule } from '../proxy-refusal.js';
import type { Session } from '../session.js';
import { ExitCode } from '../exit-codes.js';
import { action, type CliCommandModule } from '../command.js';

interface ProxyOptions {
  listen: string;
  maxClients?: string;
  fdPassing?: boolean;
  verbose?: boolean;
}

export const proxyCommand: CliCommandModule = {
  register(program: Command, ctx) {
    program
      .command('proxy')
      .description('serve QMP on a private unix socket to many clients at once, in front of a guest or a QMP socket')
      .requiredOption('-l, --listen <path>', 'unix socket to create (0600; its directory is created 0700 if missing)')
      .option('--max-clients <n>', 'clients at once (default 64)')
      .option('--fd-passing', 'forward file descriptors that clients send with commands (SCM_RIGHTS), e.g. for add-fd/getfd; with --socket, or a guest on the monitor route or on passthrough over a local unix-socket URI')
      .option('-v, --verbose', 'log every client connect and disconnect')
      .addHelpText(
        'after',
        `
Commands from proxy clients pass the same ownership policy as library calls (refusals come back as
QMP errors of class LibqemuPolicyRefused naming the libvirt API to use); --allow opts in.

Examples:
  libqemu proxy -d web1 --listen /run/libqemu/web1.sock
  libqemu proxy -d web1 --via passthrough --listen ~/.libqemu/web1.sock
  libqemu proxy --socket /tmp/qemu.qmp --listen /tmp/qmp-proxy/q.sock
  socat - UNIX-CONNECT:/run/libqemu/web1.sock`,
      )
      .action(
        action(ctx, async (session, cmd: Command) => {
          const opts = cmd.opts<ProxyOptions>();
          const maxClients = opts.maxClients === undefined ? undefined : Number(opts.maxClients);
          const log = (level: string) => (message: string) => session.out.io.stderr.write(`libqemu proxy: ${level === 'warn' ? 'warning: ' : ''}${message}\n`);
          const common = {
            listen: opts.listen,
            ...(maxClients === undefined ? {} : { maxClients }),
            ...(opts.fdPassing ? { fdPassing: true } : {}),
            logger: { info: log('info'), warn: log('warn'), ...(opts.verbose ? { debug: log('debug') } : {}) },
          };
          const guestName = session.options.domain ?? 'GUEST';
          const proxy = (await passthroughProxy(session, common, guestName)) ?? (await monitorProxy(session, common, guestName));
          session.out.either(`serving ${session.describeTarget()}${proxy.route ? ` via ${proxy.route}` : ''} on ${proxy.path}`, {
            listening: proxy.path,
            target: session.describeTarget(),
            route: proxy.route ?? null,
            qemu: proxy.greeting.version.qemu,
          });
          const stop = (signal: string) => void proxy.close(`stopped by ${signal}`);
          const onInt = () => stop('SIGINT');
          const onTerm = () => stop('SIGTERM');
          process.once('SIGINT', onInt);
          process.once('SIGTERM', onTerm);
          try {
            const reason = await proxy.done;
            return reason.startsWith('stopped by') ? ExitCode.ok : ExitCode.connection;
          } finally {
            process.off('SIGINT', onInt);
            process.off('SIGTERM', onTerm);
          }
        }),
      );
  },
};

interface ServingProxy {
  readonly path: string;
  readonly greeting: QmpGreeting;
  readonly done: Promise<string>;
  readonly route: string | undefined;
  close(reason?: string): Promise<void>;
}

interface CommonOptions {
  listen: string;
  maxClients?: number;
  fdPassing?: boolean;
  logger: ProxyLogger;
}

/**
 * A guest reached through libvirt's passthrough (--via passthrough, or auto on a guest without a
 * reachable second monitor) is served on a thread of its own that makes the libvirt calls itself.
 */
async function passthroughProxy(session: Session, common: CommonOptions, guestName: string): Promise<ServingProxy | undefined> {
  const { domain, socket, via } = session.options;
  if (socket || !domain || via === 'monitor') return undefined;
  const guest = await session.guest(domain);
  if (via === 'auto' && (await guest.qmpRoutes()).includes('monitor')) return undefined;
  const allow = session.options.allow;
  const proxy = await PassthroughProxy.start(guest, {
    ...common,
    ...(allow?.length ? { allow: allow.includes('all') ? 'all' : allow } : {}),
    // no per-command timeout: a proxied command lasts as long as its client is willing to wait
    describeRefusal: { module: refusalModule, context: { guest: guestName } },
  });
  return { path: proxy.path, greeting: proxy.greeting, done: proxy.done, route: 'passthrough', close: (reason) => proxy.close(reason) };
}

/** --socket, or a guest's second monitor: one QMP client of ours, the proxy in front of it. */
async function monitorProxy(session: Session, common: CommonOptions, guestName: string): Promise<ServingProxy> {
  // No schema checks in the proxy: clients get QEMU's own answers; no per-command timeout either,
  // a proxied command lasts as long as its client is willing to wait.
  const backend = await session.qmp({ validate: false, timeoutMs: 0, ...(common.fdPassing ? { fdPassing: true } : {}) });
  const proxy = await QmpProxy.start(backend, { ...common, describeRefusal: (err) => describeRefusal(err, { guest: guestName }) });
  const route = 'route' in backend ? String((backend as { route: unknown }).route) : undefined;
  return { path: proxy.path, greeting: proxy.greeting, done: proxy.done, route, close: (reason) => proxy.close(reason) };
}
