/**
 * The QEMU guest agent's protocol types (qemu-ga's QAPI schema, qga/qapi-schema.json), for the commands
 * GuestAgent wraps. Field names are the agent's own (kebab-case). Optional fields are absent when the
 * agent version or the guest OS does not provide them.
 */

export interface GuestAgentCommandInfo {
  name: string;
  /** false: disabled by the guest's admin (qemu-ga -b) or not implemented for this OS. */
  enabled: boolean;
  /** false for commands that never reply on success (guest-shutdown, guest-suspend-*). */
  'success-response': boolean;
}

export interface GuestAgentInfo {
  version: string;
  supported_commands: GuestAgentCommandInfo[];
}

export interface GuestOsInfo {
  'kernel-release'?: string;
  'kernel-version'?: string;
  machine?: string;
  id?: string;
  name?: string;
  'pretty-name'?: string;
  version?: string;
  'version-id'?: string;
  variant?: string;
  'variant-id'?: string;
}

export interface GuestIpAddress {
  'ip-address': string;
  'ip-address-type': 'ipv4' | 'ipv6';
  prefix: number;
}

export interface GuestNetworkInterfaceStat {
  'rx-bytes': number;
  'rx-packets': number;
  'rx-errs': number;
  'rx-dropped': number;
  'tx-bytes': number;
  'tx-packets': number;
  'tx-errs': number;
  'tx-dropped': number;
}

export interface GuestNetworkInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: GuestIpAddress[];
  statistics?: GuestNetworkInterfaceStat;
}

export interface GuestPciAddress {
  domain: number;
  bus: number;
  slot: number;
  function: number;
}

export interface GuestDiskAddress {
  'pci-controller': GuestPciAddress;
  'bus-type': string;
  bus: number;
  target: number;
  unit: number;
  serial?: string;
  dev?: string;
}

export interface GuestFilesystemInfo {
  name: string;
  mountpoint: string;
  type: string;
  'used-bytes'?: number;
  'total-bytes'?: number;
  disk: GuestDiskAddress[];
}

export type GuestFsfreezeStatus = 'thawed' | 'frozen';

export interface GuestExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

export interface GuestFileRead {
  count: number;
  'buf-b64': string;
  eof: boolean;
}

export interface GuestFileWrite {
  count: number;
  eof: boolean;
}

export interface GuestHostName {
  'host-name': string;
}

export interface GuestTimezone {
  zone?: string;
  offset: number;
}

/** guest-shutdown's modes. */
export type GuestShutdownMode = 'powerdown' | 'halt' | 'reboot';
