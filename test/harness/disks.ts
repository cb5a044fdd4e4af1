/** Disk images and disk XML for tests that attach storage to a guest of a private libvirtd. */
import { execFileSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import type { PrivateLibvirtd } from '../../src/testing/index.js';

/** A virtio-scsi controller: its disks come and go without the guest's help (no OS needed). */
export const SCSI_CONTROLLER_XML = "<controller type='scsi' index='0' model='virtio-scsi'/>";

/** An empty qcow2 image in the daemon's directory, owned by the uid QEMU runs as. */
export function qcow2Image(daemon: Pick<PrivateLibvirtd, 'base' | 'uid'>, name: string, size = '16M'): string {
  const path = join(daemon.base, name);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, size]);
  chownSync(path, daemon.uid, daemon.uid);
  return path;
}

/** A qcow2 file disk on the SCSI bus at `target` (sda, sdb…). */
export function scsiDisk(path: string, target: string): string {
  return `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${path}'/><target dev='${target}' bus='scsi'/></disk>`;
}
