/** The main thread's event-loop delay while 1,000 libvirt calls run at once (target: p99 < 10 ms). */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Domain } from '../src/libvirt/index.js';
import { printTable } from './table.js';

export async function eventLoopDelayUnderCalls(dom: Domain, title: string, label: string): Promise<void> {
  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((r) => setTimeout(r, 1000));
  idle.disable();
  const busy = monitorEventLoopDelay({ resolution: 1 });
  busy.enable();
  const t0 = performance.now();
  const replies = await Promise.all(Array.from({ length: 1000 }, () => dom.qemuMonitorCommand('{"execute":"query-status"}')));
  const wall = performance.now() - t0;
  busy.disable();
  const ok = replies.filter((r) => r.return !== undefined).length;
  const ms = (ns: number): number => ns / 1e6;
  printTable(
    `${title} (monitorEventLoopDelay, resolution 1 ms: ~1.1 ms is the idle floor)`,
    [
      { name: 'idle, 1 s', value: ms(idle.percentile(99)), unit: 'ms p99', extra: { max: ms(idle.max).toFixed(2) } },
      { name: '1,000 concurrent qemuMonitorCommand', value: ms(busy.percentile(99)), unit: 'ms p99', extra: { max: ms(busy.max).toFixed(2), wall: `${wall.toFixed(0)} ms`, ok } },
    ],
    'idle, 1 s',
    '< 10 ms p99',
  );
  console.log(`${label}: ${ms(busy.percentile(99)).toFixed(2)} ms ${ms(busy.percentile(99)) < 10 ? 'OK' : 'MISSED'}`);
}
