/**
 * A small stand-in for libvirt behind a Guest (as go-qemu's qmptest and go-libvirt's libvirttest
 * stand in for theirs): a FakeDomain with a state, an XML naming a monitor socket, taint messages and
 * lifecycle events, and the GuestContext a Hypervisor would hand a Guest. QEMU itself stays real: the
 * monitor socket in the XML is a real QEMU's (test/harness/qemu.ts), and the "passthrough" route is a
 * plain QMP socket of that QEMU. Lets route choice, reconnection and taint run in milliseconds.
 */
import { BoundedQueue } from '../../src/common/bounded-queue.js';
import type { DomainInfo, DomainState, DomainStateName } from '../../src/libvirt/domain.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import type { DomainEvent, DomainEventKind, LifecycleEventName, QemuMonitorEvent } from '../../src/libvirt/events.js';
import { StreamTransport } from '../../src/qmp/stream-transport.js';
import type { QmpTransport } from '../../src/qmp/transport.js';
import type { GuestContext, GuestDomain, GuestEventSource } from '../../src/hybrid/guest-context.js';
import { Guest } from '../../src/hybrid/guest.js';
import type { TaintReport } from '../../src/hybrid/taint.js';
import { tinyGuestXml } from '../../src/testing/index.js';

const VIR_ERR_OPERATION_INVALID = 55;
const VIR_ERR_NO_DOMAIN = 42;
const VIR_ERR_NO_SUPPORT = 3;

let seq = 0;

export class FakeDomain implements GuestDomain {
  readonly name: string;
  readonly uuid: string;
  stateName: DomainStateName = 'shutoff';
  /** The second monitor the XML names (undefined: none). */
  monitorPath: string | undefined;
  /** virDomainGetMessages. */
  messageList: string[] = [];
  /** The domain no longer exists (every call fails with VIR_ERR_NO_DOMAIN). */
  gone = false;
  /** Calls per method, e.g. calls.get('xml'). */
  readonly calls = new Map<string, number>();
  /** Runs on start() before the state turns 'running' (e.g. starts a QEMU and sets monitorPath). */
  onStart: (() => Promise<void>) | undefined;
  /** Runs on destroy() before the state turns 'shutoff'. */
  onDestroy: (() => Promise<void>) | undefined;
  private readonly subscriptions = new Set<{ kinds: DomainEventKind[]; queue: BoundedQueue<DomainEvent> }>();
  private readonly qemuSubscriptions = new Set<{ matches: (name: string) => boolean; queue: BoundedQueue<QemuMonitorEvent> }>();

  constructor(options: { name?: string; monitorPath?: string; running?: boolean } = {}) {
    const n = ++seq;
    this.name = options.name ?? `fake${n}`;
    this.uuid = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    this.monitorPath = options.monitorPath;
    if (options.running) this.stateName = 'running';
  }

  /** Open libvirt event subscriptions, domain and QEMU events (to check that nothing leaks). */
  get openSubscriptions(): number {
    return this.subscriptions.size + this.qemuSubscriptions.size;
  }

  async state(): Promise<DomainState> {
    this.count('state');
    return { state: this.stateName, reason: 'unknown' };
  }

  async info(): Promise<DomainInfo> {
    this.count('info');
    return { state: this.stateName, maxMemKiB: 65536, memoryKiB: 65536, vcpus: 1, cpuTimeNs: 0 };
  }

  async xml(_options: { inactive?: boolean } = {}): Promise<string> {
    this.count('xml');
    return tinyGuestXml({ name: this.name, uuid: this.uuid, ...(this.monitorPath ? { qmpSocket: this.monitorPath } : {}) });
  }

  async start(): Promise<void> {
    this.count('start');
    if (this.stateName !== 'shutoff') throw this.error(VIR_ERR_OPERATION_INVALID, 'domain is already running');
    await this.onStart?.();
    this.stateName = 'running';
    this.emit('started', 'booted');
  }

  async destroy(): Promise<void> {
    this.count('destroy');
    if (this.stateName === 'shutoff') throw this.error(VIR_ERR_OPERATION_INVALID, 'domain is not running');
    await this.onDestroy?.();
    this.stateName = 'shutoff';
    this.emit('stopped', 'destroyed');
  }

  async suspend(): Promise<void> {
    this.count('suspend');
    this.stateName = 'paused';
    this.emit('suspended', 'paused');
  }

  async resume(): Promise<void> {
    this.count('resume');
    this.stateName = 'running';
    this.emit('resumed', 'unpaused');
  }

  async shutdown(): Promise<void> {
    await this.destroy();
  }

  async reboot(): Promise<void> {
    this.count('reboot');
  }

  async reset(): Promise<void> {
    this.count('reset');
  }

  async undefine(): Promise<void> {
    this.count('undefine');
  }

  async messages(): Promise<string[]> {
    this.count('messages');
    return [...this.messageList];
  }

  /** virDomainIsPersistent (a fake domain is defined unless told otherwise). */
  persistent = true;
  /** The flags of each device/memory/vCPU change, in call order, e.g. ['attachDeviceFlags', 3]. */
  readonly changes: Array<[string, number]> = [];

  async isPersistent(): Promise<boolean> {
    this.count('isPersistent');
    return this.persistent;
  }

  attachDeviceFlags = (_xml: string, flags = 0) => this.change('attachDeviceFlags', flags);
  detachDeviceFlags = (_xml: string, flags = 0) => this.change('detachDeviceFlags', flags);
  updateDeviceFlags = (_xml: string, flags = 0) => this.change('updateDeviceFlags', flags);
  setMemoryFlags = (_kib: number, flags = 0) => this.change('setMemoryFlags', flags);
  setVcpusFlags = (_n: number, flags = 0) => this.change('setVcpusFlags', flags);
  // snapshots, console and screenshots need real libvirt objects: tested against the private libvirtd
  snapshotCreateXML = (): Promise<never> => this.unsupported('snapshotCreateXML');
  listAllSnapshots = (): Promise<never> => this.unsupported('listAllSnapshots');
  snapshotLookupByName = (): Promise<never> => this.unsupported('snapshotLookupByName');
  openConsole = (): Promise<never> => this.unsupported('openConsole');
  screenshot = (): Promise<never> => this.unsupported('screenshot');

  private async change(method: string, flags: number): Promise<number> {
    this.count(method);
    this.changes.push([method, flags]);
    return 0;
  }

  private async unsupported(method: string): Promise<never> {
    this.count(method);
    throw this.error(VIR_ERR_NO_SUPPORT, `the fake domain has no ${method}`);
  }

  /** Delivers a lifecycle event to the open subscriptions. */
  emit(event: LifecycleEventName, detail: string): void {
    const domain = { name: this.name, uuid: this.uuid };
    for (const s of this.subscriptions) if (s.kinds.includes('lifecycle')) s.queue.push({ kind: 'lifecycle', domain, event, detail } as DomainEvent);
  }

  /** Delivers a QEMU event as libvirt relays it, to the subscriptions whose filter matches. */
  emitQmp(event: string, data?: Record<string, unknown>): void {
    const now = Date.now();
    const ev: QemuMonitorEvent = { domain: { name: this.name, uuid: this.uuid }, event, data, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } };
    for (const s of this.qemuSubscriptions) if (s.matches(event)) s.queue.push(ev);
  }

  /** @internal for the fake context: libvirt's name filter, an exact name or (regex) an ERE. */
  subscribeQemu(options: { event?: string; regex?: boolean; bufferSize: number }): GuestEventSource<QemuMonitorEvent> {
    const { event, regex } = options;
    const matches = event === undefined ? () => true : regex ? (n: string) => new RegExp(event).test(n) : (n: string) => n === event;
    const sub = { matches, queue: undefined as unknown as BoundedQueue<QemuMonitorEvent> };
    sub.queue = new BoundedQueue<QemuMonitorEvent>({ capacity: options.bufferSize, onClose: () => this.qemuSubscriptions.delete(sub) });
    this.qemuSubscriptions.add(sub);
    return Object.assign(sub.queue, { ready: Promise.resolve() });
  }

  /** @internal for the fake context */
  subscribe(kinds: DomainEventKind[], bufferSize: number): GuestEventSource<DomainEvent> {
    const sub = { kinds, queue: undefined as unknown as BoundedQueue<DomainEvent> };
    sub.queue = new BoundedQueue<DomainEvent>({ capacity: bufferSize, overflow: 'drop-oldest', onClose: () => this.subscriptions.delete(sub) });
    this.subscriptions.add(sub);
    return Object.assign(sub.queue, { ready: Promise.resolve() });
  }

  private count(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    if (this.gone) throw this.error(VIR_ERR_NO_DOMAIN, `Domain not found: no domain with matching name '${this.name}'`);
  }

  private error(code: number, message: string): LibvirtError {
    return new LibvirtError({ code, domain: 10, message });
  }
}

export interface FakeGuestOptions {
  /** The daemon is on this host (default true). */
  local?: boolean;
  /** A QMP socket standing in for libvirt's passthrough (default: passthrough fails as on a stopped guest). */
  passthroughPath?: () => string | undefined;
}

export interface FakeGuest {
  guest: Guest;
  domain: FakeDomain;
  context: GuestContext<Guest>;
  /** What the context was handed for the hypervisor's onTaint. */
  taintReports: TaintReport[];
  /** Transports the context made for the passthrough route. */
  passthroughOpened: number;
}

/** A Guest over a FakeDomain, with the context a Hypervisor would give it. */
export function fakeGuest(domain: FakeDomain, options: FakeGuestOptions = {}): FakeGuest {
  const taintReports: TaintReport[] = [];
  const fake = { domain, taintReports, passthroughOpened: 0 } as FakeGuest;
  fake.context = {
    uri: 'fake:///session',
    local: options.local ?? true,
    placement: (options.local ?? true) ? { local: true, reason: 'unix-socket' } : { local: false, reason: 'other-host-uuid', hostUuid: '00000000-0000-4000-8000-000000000000' },
    monitorDir: '/nonexistent/libqemu-fake',
    isOpen: true,
    prepareMonitorDir: async () => undefined,
    reportTaint: (r) => void taintReports.push(r),
    domainEvents: (o) => domain.subscribe(o.kinds, o.bufferSize),
    qemuMonitorEvents: (o) => domain.subscribeQemu(o),
    passthroughTransport: (): QmpTransport => {
      fake.passthroughOpened++;
      const path = options.passthroughPath?.();
      if (path) return new StreamTransport({ path });
      return notRunningTransport();
    },
    reserveLane: async () => {
      throw new Error('the fake context has no libvirt connections to reserve');
    },
    domainStats: async () => ({ 'state.state': 1, 'state.reason': 1 }),
    openStream: async () => {
      throw new Error('the fake context has no libvirt streams');
    },
    agentTransport: () => {
      throw new Error('the fake context has no guest agent');
    },
    migrate: () => {
      throw new Error('the fake context does not migrate');
    },
  };
  fake.guest = new Guest(fake.context, domain);
  return fake;
}

/** A passthrough transport whose open fails as libvirt's does on a domain that is not running. */
function notRunningTransport(): QmpTransport {
  return {
    capabilities: { pipelining: false, oob: false, fdPassing: false, maxMessageBytes: 1 << 20, preNegotiated: true },
    description: 'passthrough:fake',
    open: async () => {
      throw new LibvirtError({ code: VIR_ERR_OPERATION_INVALID, domain: 10, message: 'Requested operation is not valid: domain is not running' });
    },
    send: () => {
      throw new Error('not open');
    },
    close: async () => undefined,
  };
}
