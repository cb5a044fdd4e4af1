/**
 * `libqemu proxy --listen PATH`: serve standard QMP to any number of clients (qmp-shell, socat,
 * monitoring agents) in front of a guest (--domain: second monitor or passthrough, with the ownership
 * policy) or a raw QMP socket (--socket). Runs until interrupted or until the backend goes away.
 */
import type { Command } from 'commander';
import { QmpProxy } from '../../proxy/server.js';
import { ExitCode } from '../exit-codes.js';
import { cliMessage } from '../hints.js';
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
          // No schema checks in the proxy: clients get QEMU's own answers; no per-command timeout either,
          // a proxied command lasts as long as its client is willing to wait.
          const backend = await session.qmp({ validate: false, timeoutMs: 0, ...(opts.fdPassing ? { fdPassing: true } : {}) });
          const log = (level: string) => (message: string) => session.out.io.stderr.write(`libqemu proxy: ${level === 'warn' ? 'warning: ' : ''}${message}\n`);
          const proxy = await QmpProxy.start(backend, {
            listen: opts.listen,
            ...(maxClients === undefined ? {} : { maxClients }),
            ...(opts.fdPassing ? { fdPassing: true } : {}),
            logger: { info: log('info'), warn: log('warn'), ...(opts.verbose ? { debug: log('debug') } : {}) },
            // a socat or qmp-shell user can only restart the proxy: name its flag, not a JavaScript call
            describeRefusal: (err) => ({
              message: cliMessage(err, { guest: session.options.domain ?? 'GUEST' }),
              hint: `to send it anyway, accepting that libvirt may lose track of this guest's state, restart the proxy with --allow ${err.allowName}`,
            }),
          });
          const route = 'route' in backend ? ` via ${String((backend as { route: unknown }).route)}` : '';
          session.out.either(`serving ${session.describeTarget()}${route} on ${proxy.path}`, { listening: proxy.path, target: session.describeTarget(), route: route.replace(' via ', '') || null, qemu: proxy.greeting.version.qemu });
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
