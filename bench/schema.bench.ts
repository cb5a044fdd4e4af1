/**
 * Schema layer costs against a real QEMU (`-machine none`, two QMP monitors so a plain QmpClient and a
 * validating QemuClient stay connected side by side; rounds are interleaved so drift hits both alike):
 *  1. Fetching and building the schema model: query-qmp-schema + query-version round trip and
 *     linking, vs linking alone, vs a cache hit on a new connection.
 *  2. Validation per execute: query-status round trip through QemuClient (validating) vs QmpClient
 *     (no validator), and validateCommand alone for small and large argument sets.
 * Target: validation < 5 % of a query-status round trip.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../src/qmp/index.js';
import { QemuClient, SchemaCache, SchemaModel, fetchSchema, validateCommand } from '../src/schema/index.js';
import { startQemu } from '../test/harness/qemu.js';
import { printTable, summarize, timeEach, type Row } from './table.js';

function syncTimeEach(n: number, op: () => void): number[] {
  for (let i = 0; i < Math.min(1000, n); i++) op();
  const times: number[] = [];
  const batch = 100; // one call is below the timer's resolution: time batches
  for (let i = 0; i < n / batch; i++) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) op();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6 / batch);
  }
  return times;
}

export default async function (): Promise<void> {
  // The second monitor's socket lives in our own private dir (the harness makes its dir at start).
  const dir = mkdtempSync(join(tmpdir(), 'libqemu-bench-schema-'));
  chmodSync(dir, 0o700);
  const second = join(dir, 'second.sock');
  const real = await startQemu({ args: ['-qmp', `unix:${second},server=on,wait=off`] });
  const plain = await QmpClient.connect({ path: real.qmpPath });
  const cache = new SchemaCache();
  const typed = await QemuClient.connect({ path: second }, { schemaCache: cache });
  try {
    // ---- 1. fetch and build ----
    const fetchTimes = await timeEach(20, () => fetchSchema(plain), 3);
    const model = await fetchSchema(plain);
    const raw = JSON.parse(JSON.stringify(model.raw)) as unknown;
    const buildTimes = await timeEach(100, async () => SchemaModel.fromIntrospection(raw, model.version), 10);
    const first = performance.now();
    await typed.schema();
    const firstNeed = performance.now() - first;
    // What a later connection to the same build does instead of fetching: one cache lookup.
    const key = SchemaCache.key(typed.greeting.version);
    const hitTimes = await timeEach(2000, () => cache.get(key, () => Promise.reject(new Error('unexpected cache miss'))));
    const fetchRow: Row[] = [
      { name: 'fetch + build (2 round trips + link)', value: summarize(fetchTimes).p50, unit: 'ms', extra: { p99: summarize(fetchTimes).p99.toFixed(2) } },
      { name: 'build only (link SchemaInfo[])', value: summarize(buildTimes).p50, unit: 'ms', extra: { p99: summarize(buildTimes).p99.toFixed(2) } },
      { name: "QemuClient's first need (this run)", value: firstNeed, unit: 'ms', extra: { p99: '-' } },
      { name: 'cache hit (later connections)', value: summarize(hitTimes).p50, unit: 'ms', extra: { p99: summarize(hitTimes).p99.toFixed(4) } },
    ];
    printTable(`Schema model: ${model.commands.size} commands, ${model.events.size} events, ${model.types.size} types`, fetchRow, 'fetch + build (2 round trips + link)');

    // ---- 2. validation per execute ----
    const rounds = 5;
    const plainTimes: number[] = [];
    const typedTimes: number[] = [];
    for (let r = 0; r < rounds; r++) {
      plainTimes.push(...(await timeEach(400, () => plain.execute('query-status'))));
      typedTimes.push(...(await timeEach(400, () => typed.execute('query-status'))));
    }
    const rtt = summarize(plainTimes).p50;
    const blockdev = {
      driver: 'qcow2',
      'node-name': 'disk0',
      file: { driver: 'file', filename: '/var/lib/images/disk0.qcow2', aio: 'threads', cache: { direct: false, 'no-flush': false } },
      'discard': 'unmap',
      'cache': { direct: true },
      'lazy-refcounts': true,
    };
    const caps = { capabilities: Array.from({ length: 8 }, (_, i) => ({ capability: i % 2 ? 'xbzrle' : 'events', state: true })) };
    const micro = (name: string, command: string, args: unknown): Row => {
      const t = summarize(syncTimeEach(100_000, () => validateCommand(model, command, args))).p50;
      return { name, value: t, unit: 'ms', extra: { 'of query-status RTT': `${((t / rtt) * 100).toFixed(2)} %` } };
    };
    const rows: Row[] = [
      { name: 'query-status RTT, QmpClient (no validation)', value: rtt, unit: 'ms', extra: { 'of query-status RTT': '100 %' } },
      {
        name: 'query-status RTT, QemuClient (validating)',
        value: summarize(typedTimes).p50,
        unit: 'ms',
        extra: { 'of query-status RTT': `${((summarize(typedTimes).p50 / rtt) * 100).toFixed(1)} %` },
      },
      micro('validate query-status (no args)', 'query-status', undefined),
      micro('validate set_link (2 members)', 'set_link', { name: 'net0', up: false }),
      micro('validate migrate-set-capabilities (8-element array)', 'migrate-set-capabilities', caps),
      micro('validate blockdev-add qcow2 (unions, alternate, nested)', 'blockdev-add', blockdev),
    ];
    printTable('Validation cost per execute (p50)', rows, 'query-status RTT, QmpClient (no validation)', 'validation < 5 % of a query-status round trip');
  } finally {
    await typed.close();
    await plain.close();
    await real.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
