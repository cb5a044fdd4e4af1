/**
 * guest.attachDevice() / detachDevice() / updateDevice() / setMemory() / setVcpus(): libvirt's own
 * calls for what the ownership policy refuses over QMP (device_add, balloon…), so libvirt's XML keeps
 * matching QEMU. `live` / `config` map to VIR_DOMAIN_AFFECT_LIVE / _CONFIG.
 */
import { InvalidArgumentError } from '../common/errors.js';
import { virDomainDeviceModifyFlags, virDomainModificationImpact } from '../generated/libvirt/enums.js';
import type { GuestDomain } from './guest-context.js';
import { isRunningState } from './guest-routes.js';

/** Where a change applies. Default: the running guest (when it runs) plus its persistent definition (when it has one). */
export interface GuestChangeOptions {
  /** Change the running guest (VIR_DOMAIN_AFFECT_LIVE). */
  live?: boolean;
  /** Change the persistent definition, kept for the next start (VIR_DOMAIN_AFFECT_CONFIG). */
  config?: boolean;
}

/** updateDevice's options: where the change applies, and whether to force it. */
export interface UpdateDeviceOptions extends GuestChangeOptions {
  /** Force the change (VIR_DOMAIN_DEVICE_MODIFY_FORCE), e.g. eject a CD-ROM whose tray the guest locked. */
  force?: boolean;
}

export interface DeviceTarget {
  name: string;
  domain: Pick<GuestDomain, 'state' | 'isPersistent' | 'attachDeviceFlags' | 'detachDeviceFlags' | 'updateDeviceFlags' | 'setMemoryFlags' | 'setVcpusFlags'>;
}

const { VIR_DOMAIN_AFFECT_LIVE: LIVE, VIR_DOMAIN_AFFECT_CONFIG: CONFIG } = virDomainModificationImpact;

/** The VIR_DOMAIN_AFFECT_* flags for `options`, asking libvirt for the defaults the caller left open. */
export async function affectFlags(target: DeviceTarget, options: GuestChangeOptions | undefined, call: string): Promise<number> {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new InvalidArgumentError(`${call}: options must be an object like { live: true, config: false }`);
  }
  const { live, config } = options ?? {};
  for (const [key, v] of [['live', live], ['config', config]] as const) {
    if (v !== undefined && typeof v !== 'boolean') throw new InvalidArgumentError(`${call}: ${key} must be a boolean, got ${JSON.stringify(v)}`);
  }
  const wantLive = live ?? isRunningState((await target.domain.state()).state);
  const wantConfig = config ?? (await target.domain.isPersistent());
  if (!wantLive && !wantConfig) {
    throw new InvalidArgumentError(`${call}: nothing to change on guest '${target.name}' (live and config both off)`, {
      hint: 'pass { live: true } for the running guest, { config: true } for its persistent definition, or leave both out',
    });
  }
  return (wantLive ? LIVE : 0) | (wantConfig ? CONFIG : 0);
}

function checkXml(xml: unknown, call: string): asserts xml is string {
  if (typeof xml !== 'string' || !/^\s*<[A-Za-z]/.test(xml)) {
    throw new InvalidArgumentError(`${call} expects one device element as XML, got ${JSON.stringify(typeof xml === 'string' ? xml.slice(0, 60) : xml)}`, {
      hint: "pass e.g. \"<disk type='file' device='disk'><source file='/path/x.qcow2'/><target dev='vdb' bus='virtio'/><driver name='qemu' type='qcow2'/></disk>\"",
    });
  }
}

export async function attachDevice(target: DeviceTarget, xml: string, options?: GuestChangeOptions): Promise<void> {
  checkXml(xml, 'attachDevice');
  await target.domain.attachDeviceFlags(xml, await affectFlags(target, options, 'attachDevice'));
}

export async function detachDevice(target: DeviceTarget, xml: string, options?: GuestChangeOptions): Promise<void> {
  checkXml(xml, 'detachDevice');
  await target.domain.detachDeviceFlags(xml, await affectFlags(target, options, 'detachDevice'));
}

export async function updateDevice(target: DeviceTarget, xml: string, options?: UpdateDeviceOptions): Promise<void> {
  checkXml(xml, 'updateDevice');
  const force = options?.force;
  if (force !== undefined && typeof force !== 'boolean') throw new InvalidArgumentError(`updateDevice: force must be a boolean, got ${JSON.stringify(force)}`);
  const flags = await affectFlags(target, options, 'updateDevice');
  await target.domain.updateDeviceFlags(xml, force ? flags | virDomainDeviceModifyFlags.VIR_DOMAIN_DEVICE_MODIFY_FORCE : flags);
}

export async function setMemory(target: DeviceTarget, kib: number, options?: GuestChangeOptions): Promise<void> {
  if (!Number.isSafeInteger(kib) || kib < 1) {
    throw new InvalidArgumentError(`setMemory expects the guest's new memory in KiB as a positive integer, got ${String(kib)}`, {
      hint: 'e.g. guest.setMemory(512 * 1024) for 512 MiB; a live change needs a balloon device and stays ≤ the maximum memory',
    });
  }
  await target.domain.setMemoryFlags(kib, await affectFlags(target, options, 'setMemory'));
}

export async function setVcpus(target: DeviceTarget, count: number, options?: GuestChangeOptions): Promise<void> {
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(`setVcpus expects a positive integer, got ${String(count)}`, {
      hint: "a live change needs <vcpu current='n'>m</vcpu> with room up to m; with { config: true } it applies at the next start",
    });
  }
  await target.domain.setVcpusFlags(count, await affectFlags(target, options, 'setVcpus'));
}
