/**
 * Following a guest: libvirt's lifecycle events and QEMU's own events in one stream, each tagged with
 * its source. On the passthrough route the QMP name filter is applied by libvirt itself.
 * Without --uri/--domain it also drives the guest (suspend, resume, reset) so there is something to see.
 *
 *   npx tsx examples/follow-events.ts [--uri URI --domain NAME] [--qmp STOP,RESUME] [--seconds 5]
 */
import { uncheckedEventNames } from '../src/index.js';
import { withGuest } from './support/sandbox.js';

await withGuest(['qmp', 'seconds'], async ({ guest, flags }) => {
  const names = typeof flags.qmp === 'string' ? flags.qmp.split(',').filter(Boolean) : undefined;
  const seconds = Number(flags.seconds ?? 5);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), seconds * 1000); // keeps the process alive while we follow

  const events = guest.events({ qmp: names ? uncheckedEventNames(names) : true, signal: stop.signal });
  await events.ready;
  console.log(`following ${guest.name} for ${seconds} s (QMP events via ${events.qmpRoute}${names ? `, only ${names.join(', ')}` : ''})`);

  if (flags.uri === undefined) {
    void (async () => {
      await guest.suspend();
      await guest.resume();
      await guest.reset();
    })();
  }

  for await (const e of events) {
    const when = e.at.toISOString().slice(11, 23);
    if (e.kind === 'lifecycle') console.log(`${when}  libvirt  ${e.event} (${e.detail})`);
    else if (e.kind === 'reboot') console.log(`${when}  libvirt  reboot`);
    else if (e.kind === 'qmp') console.log(`${when}  qmp      ${e.event} ${e.data ? JSON.stringify(e.data) : ''}`);
    else console.log(`${when}  libqemu  ${e.kind}`);
  }
  clearTimeout(timer);
});
