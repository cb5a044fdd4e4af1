/**
 * QMP quick start: connect to a QEMU monitor socket, run commands, watch events.
 *
 *   qemu-system-x86_64 -machine none -nodefaults -display none -qmp unix:/tmp/qmp.sock,server=on,wait=off &
 *   npx tsx examples/qmp-quickstart.ts /tmp/qmp.sock
 */
import { QmpClient, QmpCommandError } from '../src/index.js';

const path = process.argv[2];
if (!path) {
  console.error('usage: qmp-quickstart.ts <qmp-socket-path>');
  process.exit(2);
}

await using client = await QmpClient.connect({ path }, { timeoutMs: 5_000 });
const { qemu } = client.greeting.version;
console.log(`connected to QEMU ${qemu.major}.${qemu.minor}.${qemu.micro}`);

console.log('status:', await client.execute('query-status'));

// Subscribe before acting, so the event cannot slip past.
const { event } = await client.executeAndWait('stop', undefined, { name: 'STOP' });
console.log(`${event.event} at ${event.timestamp.seconds}`);
await client.executeAndWait('cont', undefined, { name: 'RESUME' });

try {
  await client.execute('no-such-command');
} catch (err) {
  if (err instanceof QmpCommandError) console.log(`refused: ${err.errorClass}: ${err.desc}`);
  else throw err;
}

console.log((await client.hmp('info version')).trim());
