/**
 * The python3-libvirt baseline of every per-call passthrough row: `libvirt_qemu.qemuMonitorCommand(dom,
 * '{"execute":"query-status"}', 0)` on the same guest and with the same command text as libqemu's side,
 * warmed up with 100 calls, each call timed inside python. Started twice per benchmark: plain (what the
 * targets compare against) and with libvirt's default event loop running in a thread, as every python
 * program that receives events (and virt-qemu-qmp-proxy) has it and as libqemu always has it.
 */
import { existsSync } from 'node:fs';
import { startPythonBaseline, type PythonBaseline } from './python-baseline.js';

export const QUERY_STATUS = '{"execute":"query-status"}';

const SCRIPT = `
import json, sys, time, threading, libvirt, libvirt_qemu
uri, name, loop = sys.argv[1], sys.argv[2], sys.argv[3] == 'loop'
if loop:
    libvirt.virEventRegisterDefaultImpl()
    def run():
        while True: libvirt.virEventRunDefaultImpl()
    threading.Thread(target=run, daemon=True).start()
conn = libvirt.open(uri)
dom = conn.lookupByName(name)
cmd = ${JSON.stringify(QUERY_STATUS)}
for _ in range(100): libvirt_qemu.qemuMonitorCommand(dom, cmd, 0)
print('[]', flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        t0 = time.perf_counter_ns()
        libvirt_qemu.qemuMonitorCommand(dom, cmd, 0)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    print(json.dumps(times), flush=True)
`;

export function pythonHasLibvirtQemu(): boolean {
  return existsSync('/usr/bin/python3') && existsSync('/usr/lib/python3/dist-packages/libvirt_qemu.py');
}

/** Both baselines (plain, event loop thread), or none when python3-libvirt is missing. */
export async function startPythonQmp(uri: string, name: string): Promise<{ plain: PythonBaseline; loop: PythonBaseline } | undefined> {
  if (!pythonHasLibvirtQemu()) return undefined;
  const [plain, loop] = await Promise.all([startPythonBaseline(SCRIPT, uri, name, false), startPythonBaseline(SCRIPT, uri, name, true)]);
  return { plain, loop };
}
