/**
 * `npm run demo` (interim): starts a bare QEMU in a private temp dir and shows the QMP client at work.
 * The libvirt + QMP demo replaces this once the hybrid facade lands.
 */
import { QmpClient, QmpCommandError } from '../src/index.js';
import { startQemu } from '../test/harness/qemu.js';

const qemu = await startQemu();
try {
  const client = await QmpClient.connect({ path: qemu.qmpPath }, { oob: true });
  client.on('runstate', (state) => console.log(`  [runstate] ${state}`));
  const { qemu: v, package: pkg } = client.greeting.version;
  console.log(`QEMU ${v.major}.${v.minor}.${v.micro} (${pkg}), capabilities: ${client.greeting.capabilities.join(', ') || 'none'}`);

  console.log('query-status →', await client.execute('query-status'));

  // Events through a bounded per-subscriber queue.
  const events = client.events({ names: ['STOP', 'RESUME'] });
  await client.execute('stop');
  await client.execute('cont');
  for (let i = 0; i < 2; i++) {
    const { value } = await events.next();
    console.log(`event ${value?.event} at ${value?.timestamp.seconds}.${String(value?.timestamp.microseconds).padStart(6, '0')}`);
  }
  await events.return();

  // Many calls at once: replies are matched by id, at most 8 in flight.
  const t0 = performance.now();
  const replies = await Promise.all(Array.from({ length: 200 }, () => client.execute('query-status')));
  console.log(`200 concurrent query-status: ${replies.length} replies in ${(performance.now() - t0).toFixed(1)} ms`);

  // Out-of-band: runs even while the in-band queue is busy (needs a command with allow-oob).
  console.log('exec-oob query-yank →', await client.execute('query-yank', undefined, { oob: true }));

  try {
    await client.execute('query-command-line-options', { option: 'bogus' });
  } catch (err) {
    if (!(err instanceof QmpCommandError)) throw err;
    console.log(`typed error: ${err.errorClass}: ${err.desc}`);
  }

  console.log(`hmp "info status" → ${(await client.hmp('info status')).trim()}`);
  await client.close();
} finally {
  await qemu.stop();
}
