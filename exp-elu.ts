import { Connection } from './src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from './src/testing/private-libvirtd.js';
const daemon = await startPrivateLibvirtd({ prefix: 'expe' });
const conn = await Connection.open(daemon.uri);
const dom = await conn.createXML(tinyGuestXml({ name: 'e1' }));
const q = '{"execute":"query-status"}';
for (let i = 0; i < 100; i++) await dom.qemuMonitorCommand(q);
for (let r = 0; r < 3; r++) {
  const e0 = performance.eventLoopUtilization();
  const c0 = process.cpuUsage();
  const t = performance.now();
  const N = 1000;
  for (let i = 0; i < N; i++) await dom.qemuMonitorCommand(q);
  const wall = performance.now() - t;
  const e = performance.eventLoopUtilization(e0);
  const c = process.cpuUsage(c0);
  console.log(`ms/call ${(wall / N).toFixed(3)} main active ms/call ${(e.active / N).toFixed(3)} idle ms/call ${(e.idle / N).toFixed(3)} process cpu ms/call ${((c.user + c.system) / 1000 / N).toFixed(3)}`);
}
await dom.destroy(); await conn.close(); await daemon.stop();
