/**
 * The hybrid facade, side by side against one guest of a private libvirtd:
 * - `query-status` round trip: the QMP-core client on the guest's second monitor socket (baseline),
 *   `guest.qmp({ via: 'monitor' })` (target ≤ 1.10× the baseline), `guest.qmp({ via: 'passthrough' })`,
 *   and `virsh qemu-monitor-command` (a whole process per call);
 * - open time: `hv.guest(name)` + `guest.qmp()` vs `QmpClient.connect({ path })` on the same socket.
 * A second monitor serves one client at a time, so the rows run one after the other.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Hypervisor } from '../src/hybrid/index.js';
import { QmpClient } from '../src/qmp/client.js';
import { startPrivateLibvirtd, tinyGuestXml } from '../src/testing/index.js';
import { printTable, summarize, timeEach, type Row } from './table.js';

const execFileP = promisify(execFile);

function row(name: string, times: number[], extra: Record<string, string | number> = {}): Row {
  // The median is the compared value: these machines are shared, and a few slow outliers from other
  // load would otherwise decide the ratio. The mean is printed beside it.
  const s = summarize(times);
  return { name, value: s.p50, unit: 'ms (p50)', extra: { mean: s.mean.toFixed(3), p99: s.p99.toFixed(3), min: s.min.toFixed(3), n: times.length, ...extra } };
}

export default async function (): Promise<void> {
  const lv = await startPrivateLibvirtd({ prefix: 'hbn' });
  const hv = await Hypervisor.connect(lv.uri, { monitorDir: lv.qmpDir, onTaint: () => {} });
  try {
    const guest = await hv.defineGuest(tinyGuestXml({ name: 'bench' }), { qmpSocket: true });
    await guest.start();
    const socket = (await guest.monitorSocket())!;
    await new Promise((r) => setTimeout(r, 500)); // let SeaBIOS settle

    const N = 2000;
    const rows: Row[] = [];
    // Interleaved rounds: the machine is shared and noisy, so each row sees the same conditions.
    const raw: number[] = [];
    const mon: number[] = [];
    const monNoValidate: number[] = [];
    for (let round = 0; round < 20; round++) {
      const base = await QmpClient.connect({ path: socket });
      raw.push(...(await timeEach(N / 20, () => base.execute('query-status'))));
      await base.close();
      const viaMonitor = await guest.qmp({ via: 'monitor' });
      mon.push(...(await timeEach(N / 20, () => viaMonitor.execute('query-status'))));
      await viaMonitor.close();
      const viaMonitorRaw = await guest.qmp({ via: 'monitor', validate: false });
      monNoValidate.push(...(await timeEach(N / 20, () => viaMonitorRaw.execute('query-status'))));
      await viaMonitorRaw.close();
    }
    rows.push(row('QMP-core client, same socket', raw));
    rows.push(row('guest.qmp() via monitor', mon, { note: 'policy + schema validation' }));
    rows.push(row('guest.qmp() via monitor, validate:false', monNoValidate, { note: 'policy only' }));

    const viaPassthrough = await guest.qmp({ via: 'passthrough' });
    rows.push(row('guest.qmp() via passthrough', await timeEach(1000, () => viaPassthrough.execute('query-status'))));
    await viaPassthrough.close();

    const virsh = await timeEach(30, () => execFileP('virsh', ['-c', lv.uri, 'qemu-monitor-command', 'bench', '{"execute":"query-status"}']), 3);
    rows.push(row('virsh qemu-monitor-command (process)', virsh));
    printTable('query-status round trip, one guest (sequential)', rows, 'QMP-core client, same socket', 'monitor ≤ 1.10× QMP-core');

    const openRows: Row[] = [];
    openRows.push(
      row(
        'QmpClient.connect({ path })',
        await timeEach(50, async () => {
          const c = await QmpClient.connect({ path: socket });
          await c.close();
        }, 5),
      ),
    );
    openRows.push(
      row(
        'hv.guest(name) + guest.qmp() (auto → monitor)',
        await timeEach(50, async () => {
          const c = await (await hv.guest('bench')).qmp();
          await c.close();
        }, 5),
      ),
    );
    openRows.push(
      row(
        "hv.guest(name) + guest.qmp({ via: 'passthrough' })",
        await timeEach(50, async () => {
          const c = await (await hv.guest('bench')).qmp({ via: 'passthrough' });
          await c.close();
        }, 5),
      ),
    );
    printTable('open time', openRows, 'QmpClient.connect({ path })');
    await guest.destroy();
    await guest.undefine();
  } finally {
    await hv.close();
    await lv.stop();
  }
}
