import { Hypervisor } from '/work/wt/reconnect/src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml } from '/work/wt/reconnect/src/testing/index.js';
const lv = await startPrivateLibvirtd({ prefix: 'meas', tcp: true });
for (const uri of [lv.uri, lv.tcpUri!]) {
  const hv = await Hypervisor.connect(uri, { monitorDir: lv.qmpDir, reconnect: { initialDelayMs: 50, maxDelayMs: 500, giveUpAfterMs: 1500 } });
  const g = await hv.createGuest(tinyGuestXml({ name: 'm' + uri.length }));
  const ev = g.events({ via: 'passthrough' }); await ev.ready;
  const back = new Promise((r) => hv.once('reconnected', r));
  const t0 = performance.now();
  await lv.restart();
  await back;
  const t1 = performance.now();
  await g.state();
  await g.destroy();
  let t = performance.now(); await hv.close(); const closeAfterReconnect = performance.now() - t;
  const hv2 = await Hypervisor.connect(uri, { reconnect: { initialDelayMs: 50, maxDelayMs: 300, giveUpAfterMs: 1500 } });
  const failed = new Promise((r) => hv2.once('reconnect-failed', r));
  await lv.kill(); await failed;
  t = performance.now(); await hv2.close(); const closeAfterGiveUp = performance.now() - t;
  await lv.restart();
  const hv3 = await Hypervisor.connect(uri, { reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
  const lost = new Promise((r) => hv3.once('disconnected', r));
  await lv.kill(); await lost;
  t = performance.now(); await hv3.close(); const closeWhileReconnecting = performance.now() - t;
  await lv.restart();
  console.log(JSON.stringify({ uri: uri.split(':')[0], restartToReconnectedMs: Math.round(t1 - t0), closeAfterReconnect: Math.round(closeAfterReconnect), closeAfterGiveUp: Math.round(closeAfterGiveUp), closeWhileReconnecting: Math.round(closeWhileReconnecting) }));
}
await lv.stop();
