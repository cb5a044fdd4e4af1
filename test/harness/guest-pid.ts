import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PrivateLibvirtd } from '../../src/testing/index.js';

/** The pid of a running guest's QEMU, from the private libvirtd's pid file (to SIGSTOP it, say). */
export function qemuPid(daemon: PrivateLibvirtd, guestName: string): number {
  return Number(readFileSync(join(daemon.base, 'run/libvirt/qemu/run', `${guestName}.pid`), 'utf8').trim());
}
