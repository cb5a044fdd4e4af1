/**
 * libqemu's main demo (`npm run demo`): libvirt and QMP on the very same guest.
 *
 * By default it starts a private, unprivileged libvirtd in a temporary directory and a tiny TCG guest
 * with a second QMP monitor, then shows: lifecycle through libvirt; query-status and set_link through
 * QMP; a QMP `stop` that libvirt then reports as paused; events from both sides in one stream; the
 * monitor reconnecting after a restart; passthrough to a second guest that has no extra monitor; and
 * the ownership policy refusing a mutating command. Everything it started is removed at the end, also
 * on Ctrl-C.
 *
 *   npm run demo
 *   npm run demo -- --uri qemu:///system --domain web1    # an existing libvirt guest instead (it must run;
 *                                                         # it is paused and resumed once, nothing else changes)
 *   npm run demo -- --linux                               # libqemu's Linux test guest: the guest agent next to
 *                                                         # QMP and libvirt, then an ACPI power-off
 */
import { DOMParser } from '@xmldom/xmldom';
import { parseArgs } from 'node:util';
import { Hypervisor, PolicyError, type Guest, type GuestEvent, type GuestEventStream, type GuestQmpClient, type TaintReport } from '../src/hybrid/index.js';
import { LibqemuError } from '../src/common/errors.js';
import { linuxTestGuest, startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../src/testing/index.js';

const { values: opts } = parseArgs({
  options: {
    uri: { type: 'string' },
    domain: { type: 'string' },
    linux: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log(
    'usage: npm run demo [-- --uri URI --domain NAME | --linux]\n  without options: a private libvirtd and two tiny guests, all removed at the end\n' +
      '  --linux: a private libvirtd and the Linux test guest (built from Debian packages, cached): the guest agent too',
  );
  process.exit(0);
}
if ((opts.uri === undefined) !== (opts.domain === undefined)) {
  console.error('demo: --uri and --domain go together (an existing libvirt and one of its running guests)');
  process.exit(2);
}

// ---- output -----------------------------------------------------------------------------------
const t0 = Date.now();
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const clock = () => paint('2', `${((Date.now() - t0) / 1000).toFixed(2).padStart(6)}s`);
const TAGS: Record<string, string> = { libvirt: paint('36', 'libvirt'), qmp: paint('35', 'qmp    '), libqemu: paint('33', 'libqemu'), demo: paint('1', 'demo   ') };
const say = (tag: keyof typeof TAGS, text: string) => console.log(`${clock()}  ${TAGS[tag]}  ${text}`);
const step = (title: string) => console.log(`\n${paint('1', `── ${title} `.padEnd(78, '─'))}`);
const show = (v: unknown) => JSON.stringify(v);

function describeEvent(e: GuestEvent): string {
  switch (e.kind) {
    case 'lifecycle':
      return `event  ${e.guest}: ${e.event} (${e.detail})`;
    case 'reboot':
      return `event  ${e.guest}: reboot`;
    case 'agent-lifecycle':
      return `event  ${e.guest}: guest agent ${e.state} (${e.reason})`;
    case 'qmp':
      return `event  ${e.guest}: ${e.event}${e.data ? ` ${show(e.data)}` : ''}  [via ${e.route}]`;
    case 'qmp-disconnected':
      return `notice ${e.guest}: QMP monitor disconnected (${e.reason}); QMP events are lost until it is back`;
    case 'qmp-reconnected':
      return `notice ${e.guest}: QMP monitor reconnected after a ${e.gapMs} ms gap`;
    case 'taint':
      return `notice ${e.guest}: libvirt taints it: ${e.taints.map((t) => t.flag).join(', ')}`;
  }
}

/** Prints a guest's unified event stream as events arrive (libvirt's and QEMU's, tagged by source). */
function follow(stream: GuestEventStream): Promise<void> {
  return (async () => {
    for await (const e of stream) if (e.kind !== 'taint') say(e.source, describeEvent(e)); // taint: printed by onTaint
  })().catch((err: unknown) => say('demo', `event stream ended: ${(err as Error).message}`));
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(20);
  }
}

// ---- cleanup, also on Ctrl-C ------------------------------------------------------------------
const cleanups: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.log(`\n${clock()}  ${TAGS.demo}  ${sig}: cleaning up everything the demo started…`);
    void cleanup().then(() => process.exit(130));
  });
}

/** The NIC's device id (libvirt's alias, e.g. net0) from the live domain XML. */
function nicAlias(xml: string): string | undefined {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const ifaces = doc.getElementsByTagName('interface');
  for (let i = 0; i < ifaces.length; i++) {
    const alias = ifaces.item(i)!.getElementsByTagName('alias').item(0)?.getAttribute('name');
    if (alias) return alias;
  }
  return undefined;
}

async function showPolicy(qmp: GuestQmpClient, nic: string | undefined): Promise<void> {
  step('the ownership policy: libvirt stays in charge of what it tracks');
  try {
    await qmp.execute('device_add', { driver: 'e1000', id: 'nic-behind-libvirts-back' });
    say('demo', 'unexpected: device_add was sent');
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    say('libqemu', `device_add refused: ${err.reason}`);
    say('libqemu', `  use instead: ${err.instead}`);
    say('libqemu', `  hint: ${err.hint}`);
  }
  const k = await qmp.hmp('info status');
  say('qmp', `read-only commands always pass: HMP "info status" → ${show(k.trim())}`);
  if (nic) say('demo', `(set_link on ${nic} passed the policy: link state is not something libvirt tracks live)`);
}

async function embedded(): Promise<void> {
  step('setup: a private libvirtd (session mode, unprivileged, in a temp dir)');
  const lv: PrivateLibvirtd = await startPrivateLibvirtd({ prefix: 'demo' });
  cleanups.push(() => lv.stop());
  say('libvirt', `libvirtd pid ${lv.pid} as uid ${lv.uid}, all state in ${lv.base}`);
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: (r: TaintReport) => say('libqemu', `taint (reported once): ${r.guest} → ${r.taints.map((t) => `${t.flag} ("${t.message}")`).join(', ')}`) });
  cleanups.push(() => hv.close());
  say('libvirt', `connected: ${hv.uri} (libvirt ${show(await hv.connection.libVersion())})`);

  step('define a guest with a second QMP monitor');
  // a tiny TCG guest (no disk: it idles in SeaBIOS, 64 MiB) with a user-mode e1000 NIC for set_link
  const guest = await hv.defineGuest(tinyGuestXml({ name: 'libqemu-demo', nic: {} }), { qmpSocket: true });
  cleanups.push(() => removeGuest(guest));
  say('libvirt', `defined '${guest.name}' (${guest.uuid})`);
  say('libqemu', `second monitor added to <qemu:commandline>: ${await guest.monitorSocket()}`);

  step('lifecycle through libvirt, then follow the events of both sides');
  await guest.start();
  say('libvirt', `start → state ${show(await guest.state())}`);
  const events = guest.events(); // libvirt's lifecycle events + QEMU's events over the second monitor
  cleanups.push(() => events.return());
  const printing = follow(events);
  await events.ready;
  say('libqemu', `following libvirt events and QMP events (via ${events.qmpRoute})`);

  step('QMP on the same guest');
  const qmp = await guest.qmp();
  cleanups.push(() => qmp.close());
  say('qmp', `connected via ${qmp.route}: QEMU ${Object.values(qmp.greeting.version.qemu).join('.')} (${qmp.greeting.version.package})`);
  say('qmp', `query-status → ${show(await qmp.execute('query-status'))}`);
  const nic = nicAlias(await guest.xml());
  if (nic) {
    await qmp.commands.setLink({ name: nic, up: false });
    say('qmp', `set_link ${nic} down → ok (the guest's NIC lost its carrier)`);
    await qmp.commands.setLink({ name: nic, up: true });
    say('qmp', `set_link ${nic} up → ok`);
  }

  step("a QMP stop that libvirt then reports as paused");
  await qmp.execute('stop');
  say('qmp', 'stop → ok');
  await until('libvirt to see the pause', async () => (await guest.state()).state === 'paused');
  say('libvirt', `state → ${show(await guest.state())}`);
  await guest.resume();
  say('libvirt', `resume → ${show(await guest.state())}; QMP query-status → ${(await qmp.execute('query-status')).status}`);
  await pause(200);

  step('restart through libvirt: the monitor client reconnects by itself');
  await guest.destroy();
  say('libvirt', `destroy → ${show(await guest.state())}`);
  await guest.start();
  say('libvirt', `start → ${show(await guest.state())}`);
  await until('the monitor to come back', async () => (await qmp.execute('query-status').then(() => true, () => false)));
  say('qmp', `same client, new QEMU: query-status → ${(await qmp.execute('query-status')).status}`);

  step('passthrough to a second guest that has no extra monitor');
  const plain = await hv.createGuest(tinyGuestXml({ name: 'libqemu-demo-plain' }));
  cleanups.push(() => plain.destroy());
  say('libvirt', `created transient '${plain.name}': ${show(await plain.state())}, routes ${show(await plain.qmpRoutes())}`);
  const pt = await plain.qmp();
  cleanups.push(() => pt.close());
  const caps = pt.transport.capabilities;
  say('qmp', `connected via ${pt.route} (virDomainQemuMonitorCommand: negotiated by libvirt=${caps.preNegotiated}, pipelining=${caps.pipelining})`);
  say('qmp', `query-status → ${show(await pt.execute('query-status'))}`);
  say('qmp', `query-name → ${show(await pt.execute('query-name'))}`);

  await showPolicy(qmp, nic);

  step('clean up');
  await events.return();
  await printing;
  await cleanup();
  say('demo', 'removed both guests, the monitor sockets, libvirtd and its directory');
}

async function external(uri: string, domain: string): Promise<void> {
  step(`an existing libvirt guest: ${domain} on ${uri}`);
  const hv = await Hypervisor.connect(uri, { onTaint: (r: TaintReport) => say('libqemu', `taint (reported once): ${r.taints.map((t) => t.flag).join(', ')}`) });
  cleanups.push(() => hv.close());
  const guest = await hv.guest(domain);
  say('libvirt', `${guest.name} (${guest.uuid}): ${show(await guest.state())}, routes ${show(await guest.qmpRoutes())}`);
  const events = guest.events();
  cleanups.push(() => events.return());
  const printing = follow(events);
  await events.ready;

  const qmp = await guest.qmp();
  cleanups.push(() => qmp.close());
  say('qmp', `connected via ${qmp.route}: QEMU ${Object.values(qmp.greeting.version.qemu).join('.')}`);
  say('qmp', `query-status → ${show(await qmp.execute('query-status'))}`);

  step('a QMP stop that libvirt then reports as paused (resumed at once)');
  await qmp.execute('stop');
  await until('libvirt to see the pause', async () => (await guest.state()).state === 'paused');
  say('libvirt', `state → ${show(await guest.state())}`);
  await guest.resume();
  say('libvirt', `resume → ${show(await guest.state())}`);
  await pause(300);

  if (qmp.route === 'monitor') {
    step('the same guest through libvirt passthrough');
    const pt = await guest.qmp({ via: 'passthrough' });
    cleanups.push(() => pt.close());
    say('qmp', `via ${pt.route}: query-status → ${show(await pt.execute('query-status'))}`);
  }
  await showPolicy(qmp, undefined);
  await events.return();
  await printing;
  await cleanup();
}

async function linux(): Promise<void> {
  step('setup: a private libvirtd and the Linux test guest (kernel + busybox + qemu-ga, from Debian packages)');
  const lv: PrivateLibvirtd = await startPrivateLibvirtd({ prefix: 'demo' });
  cleanups.push(() => lv.stop());
  say('libvirt', `libvirtd pid ${lv.pid} as uid ${lv.uid}, all state in ${lv.base}`);
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir });
  cleanups.push(() => hv.close());
  const files = await linuxTestGuest({ name: 'libqemu-demo-linux', dir: lv.base, owner: lv });
  say('demo', `guest image: ${files.image.dir} (${files.image.kernelRelease}, qemu-ga ${files.image.packages['qemu-guest-agent']})`);
  const guest = await hv.defineGuest(files.xml, { qmpSocket: true });
  cleanups.push(() => removeGuest(guest));
  const events = guest.events({ qmp: false });
  cleanups.push(() => events.return());
  const printing = follow(events);
  await events.ready;

  step('boot, and wait for the guest agent');
  const started = Date.now();
  await guest.start();
  const agent = guest.agent();
  await agent.waitReady({ timeoutMs: 120_000 });
  say('libqemu', `agent ready ${Date.now() - started} ms after start`);

  step('one guest, three channels: libvirt, QMP and the guest agent');
  say('libvirt', `state → ${show(await guest.state())}`);
  const qmp = await guest.qmp();
  cleanups.push(() => qmp.close());
  say('qmp', `query-status → ${show(await qmp.execute('query-status'))}`);
  const os = await agent.getOsInfo();
  say('demo', `agent  guest-get-osinfo → ${os['pretty-name']} (kernel ${os['kernel-release']})`);
  const r = await agent.exec('/bin/sh', ['-c', 'echo "$(hostname): up $(cut -d" " -f1 /proc/uptime) s"; exit 3']);
  say('demo', `agent  exec → exit ${r.exitCode}, stdout ${show(r.stdout)}`);
  await agent.writeFile('/tmp/hello', 'written by libqemu\n');
  say('demo', `agent  writeFile + readFile → ${show((await agent.readFile('/tmp/hello')).toString())}`);

  step('power off through the ACPI power button, and wait until it is off');
  await guest.shutdown({ mode: 'acpi', wait: true, timeoutMs: 60_000 });
  say('libvirt', `state → ${show(await guest.state())}`);
  await pause(200);
  await events.return();
  await printing;
  await cleanup();
  say('demo', 'removed the guest, libvirtd and its directory (the guest image stays cached)');
}

async function removeGuest(g: Guest): Promise<void> {
  if (await g.isRunning().catch(() => false)) await g.destroy();
  await g.undefine();
}

try {
  console.log(paint('1', 'libqemu demo: libvirt manages the guest, QMP talks to the very same QEMU'));
  if (opts.uri !== undefined && opts.domain !== undefined) await external(opts.uri, opts.domain);
  else if (opts.linux) await linux();
  else await embedded();
  console.log(`\n${clock()}  ${TAGS.demo}  done`);
} catch (err) {
  console.error(`\n${clock()}  ${TAGS.demo}  failed: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof LibqemuError && err.hint) console.error(`         hint: ${err.hint}`);
  await cleanup();
  process.exitCode = 1;
}
