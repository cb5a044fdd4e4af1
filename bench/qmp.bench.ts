/**
 * QMP client overhead against the same real QEMU (`-machine none`, two QMP monitors so both clients
 * stay connected; rounds are interleaved so drift hits both alike):
 *  1. query-status round trip, sequential: libqemu vs a minimal raw-socket client that also sends ids
 *     (QEMU answers a command with an id ~0.05–0.1 ms later than one without).
 *  2. Throughput with 8 in flight vs sequential.
 *  3. Framing + parsing of a real query-qmp-schema reply (~190 KB) vs JSON.parse of the same text.
 * Both clients negotiate oob (QEMU only reads ahead, i.e. lets commands pipeline, with oob on).
 * Targets: sequential libqemu/raw ≤ 1.10; pipelined throughput ≥ sequential; framing ≤ 1.25× JSON.parse.
 */
import { join } from 'node:path';
import { MessageFramer } from '../src/qmp/framing.js';
import { QmpClient } from '../src/qmp/index.js';
import { startQemu } from '../test/harness/qemu.js';
import { RawQmpClient } from './raw-qmp-client.js';
import { printTable, summarize, timeEach } from './table.js';

async function throughput(total: number, inFlight: number, op: () => Promise<unknown>): Promise<number> {
  let started = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (started < total) {
      started++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return total / seconds;
}

export default async function run(): Promise<void> {
  // The second monitor's socket goes in the harness's private dir: it is made before QEMU starts.
  const rawName = 'raw.sock';
  const rawStringName = 'raw-s.sock';
  const q2 = await startQemu({
    argsFor: (dir) => ['-qmp', `unix:${join(dir, rawName)},server=on,wait=off`, '-qmp', `unix:${join(dir, rawStringName)},server=on,wait=off`],
  });
  const rawPath = join(q2.dir, rawName); // startQemu waits until every monitor socket listens
  try {
    const client = await QmpClient.connect({ path: q2.qmpPath }, { oob: true, handshakeTimeoutMs: 60_000 });
    const raw = await RawQmpClient.open(rawPath, { oob: true });
    // Diagnostic: the same bytes on the wire as libqemu, to tell client cost from QEMU's per-byte cost.
    const rawString = await RawQmpClient.open(join(q2.dir, rawStringName), { oob: true, stringIds: true });

    // 1: sequential round trips, interleaved in small batches so load drift hits both alike.
    const rounds = 5;
    const n = 1000;
    const seq = { raw: [] as number[], lib: [] as number[], rawString: [] as number[] };
    await timeEach(200, () => raw.call('query-status'));
    await timeEach(200, () => client.execute('query-status'));
    await timeEach(200, () => rawString.call('query-status'));
    for (let b = 0; b < (rounds * n) / 50; b++) {
      seq.raw.push(...(await timeEach(50, () => raw.call('query-status'), 0)));
      seq.lib.push(...(await timeEach(50, () => client.execute('query-status'), 0)));
      seq.rawString.push(...(await timeEach(50, () => rawString.call('query-status'), 0)));
    }
    // 2: throughput, sequential vs 8 in flight.
    const tput = { rawSeq: [] as number[], libSeq: [] as number[], raw8: [] as number[], lib8: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      tput.rawSeq.push(await throughput(n, 1, () => raw.call('query-status')));
      tput.libSeq.push(await throughput(n, 1, () => client.execute('query-status')));
      tput.raw8.push(await throughput(4 * n, 8, () => raw.call('query-status')));
      tput.lib8.push(await throughput(4 * n, 8, () => client.execute('query-status')));
    }
    const sRaw = summarize(seq.raw);
    const sLib = summarize(seq.lib);
    const extra = (s: ReturnType<typeof summarize>) => ({ p50: `${s.p50.toFixed(3)} ms`, p99: `${s.p99.toFixed(3)} ms`, min: `${s.min.toFixed(3)} ms` });
    printTable(
      `query-status round trip, sequential (${rounds * n} calls each, interleaved in batches of 50; mean)`,
      [
        { name: 'raw socket client (ids)', value: sRaw.mean, unit: 'ms', extra: extra(sRaw) },
        { name: 'libqemu QmpClient', value: sLib.mean, unit: 'ms', extra: extra(sLib) },
        { name: 'diagnostic: raw, string ids (libqemu\'s bytes)', value: summarize(seq.rawString).mean, unit: 'ms', extra: extra(summarize(seq.rawString)) },
      ],
      'raw socket client (ids)',
      'libqemu/raw ≤ 1.10',
    );
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    printTable(
      'query-status throughput (median of rounds; ratio vs libqemu sequential, higher is better)',
      [
        { name: 'libqemu sequential', value: median(tput.libSeq), unit: 'calls/s' },
        { name: 'libqemu 8 in flight', value: median(tput.lib8), unit: 'calls/s' },
        { name: 'raw sequential', value: median(tput.rawSeq), unit: 'calls/s' },
        { name: 'raw 8 in flight', value: median(tput.raw8), unit: 'calls/s' },
      ],
      'libqemu sequential',
      'libqemu 8-in-flight / sequential ≥ 1.00',
    );

    // 3: framing a real query-qmp-schema reply.
    const line = await raw.call('query-qmp-schema');
    const bytes = Buffer.from(`${line}\n`);
    const text = line.replace(/\r$/, '');
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536));
    let parsed = 0;
    const framer = new MessageFramer({ message: () => parsed++, protocolError: (e) => { throw e; } });
    const variants: Record<string, () => void> = {
      'JSON.parse(bytes.toString())': () => JSON.parse(bytes.toString('utf8')),
      'JSON.parse(string), decoding not counted': () => JSON.parse(text),
      'MessageFramer, 64 KiB chunks (as from a socket)': () => {
        for (const c of chunks) framer.push(c);
      },
      'MessageFramer, one chunk': () => framer.push(bytes),
    };
    // Interleaved small batches: the machine's load drifts, so every variant sees the same drift.
    const perRound: Record<string, number[]> = {};
    const rounds2 = 60;
    const batch = 5;
    for (let r = 0; r < rounds2 + 5; r++) {
      for (const [name, fn] of Object.entries(variants)) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < batch; i++) fn();
        if (r >= 5) (perRound[name] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e6 / batch);
      }
    }
    if (parsed !== 2 * batch * (rounds2 + 5)) throw new Error(`framer parsed ${parsed} messages`);
    printTable(
      `framing + parsing a query-qmp-schema reply (${(bytes.length / 1024).toFixed(0)} KiB; median of ${rounds2} interleaved batches)`,
      Object.entries(perRound).map(([name, t]) => ({ name, value: summarize(t).p50, unit: 'ms', extra: { min: `${summarize(t).min.toFixed(3)} ms` } })),
      'JSON.parse(bytes.toString())',
      'framer ≤ 1.25× JSON.parse of the same bytes',
    );
    raw.close();
    rawString.close();
    await client.close();
  } finally {
    await q2.stop();
  }
}
