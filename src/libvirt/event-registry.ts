/**
 * One connection's libvirt event callbacks: which registrations exist in libvirt, which streams each
 * serves, and the order in which registration RPCs run. Streams with equal filters share one libvirt
 * registration (libvirt refuses a second registration of one callback for the same event and object:
 * "event callback already tracked"); the last stream to leave deregisters it.
 */
import { DOMAIN_EVENT_IDS, NETWORK_EVENT_IDS, NODE_DEVICE_EVENT_IDS, SECRET_EVENT_IDS, STORAGE_POOL_EVENT_IDS } from '../generated/libvirt/event-ids.js';
import { LibvirtError } from './errors.js';
import { EventStream, agentLifecycleEvent, type ConnectionGap, lifecycleEvent, qemuMonitorEvent, type DomainIdentity, type SubscriptionOptions } from './events.js';
import type { EventFamily } from './protocol.js';
import { runtime, type EventCommandInput, type EventListener } from './runtime.js';

export type EventPayload = Exclude<Parameters<EventListener>[0], { k: 'closed' }>;

/** Brings a registration command up to date for the libvirt connection it runs on (its pointers swapped). */
export type PrepareCommand = (cmd: EventCommandInput) => Promise<EventCommandInput>;

/** What the registry needs from its connection. */
export interface RegistryHost {
  /** Runs registration RPCs while no other call is in flight on the libvirt connection they use. */
  exclusive<T>(fn: (prepare: PrepareCommand) => Promise<T>): Promise<T>;
  /** False once the connection is closing or lost: no new registrations, no deregistration RPCs. */
  readonly acceptsRegistrations: boolean;
}

/** One consumer's stream; it is served by one or more shared registrations. */
interface Subscription {
  /** Only events this accepts reach the stream (a registration wider than the stream's filter). */
  accept: ((m: EventPayload) => boolean) | undefined;
  deliver: (m: EventPayload) => void;
  /** Yields a gap notice (the connection was re-established; events in between are lost). */
  gap: (g: ConnectionGap) => void;
  end: (err?: unknown) => void;
  registrations: Registration[];
}

interface Registration {
  readonly key: string;
  /** The opaque libvirt passes back with each event. */
  readonly id: number;
  readonly kind: 'domain' | 'qemu' | 'object';
  /** For 'object' registrations: whose virConnect<Family>EventDeregisterAny undoes it. */
  readonly family: EventFamily | undefined;
  callbackId: number | undefined;
  registered: Promise<void>;
  readonly subscribers: Set<Subscription>;
  /** The libvirt command that registers it (again, after a reconnection). */
  readonly command: (id: number) => EventCommandInput;
}

export interface RegistrationSpec {
  /** Equal keys mean equal filters (kind/event, object, name and flags). */
  key: string;
  kind: Registration['kind'];
  family?: EventFamily;
  command: (id: number) => EventCommandInput;
}

let registrationSeq = 0;

const reverse = (ids: Readonly<Record<string, number>>): Record<number, string> => Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
/** Event id → libqemu's kind name, per family. */
const EVENT_NAMES: Record<EventFamily, Record<number, string>> = {
  domain: reverse(DOMAIN_EVENT_IDS),
  network: reverse(NETWORK_EVENT_IDS),
  storagePool: reverse(STORAGE_POOL_EVENT_IDS),
  nodeDevice: reverse(NODE_DEVICE_EVENT_IDS),
  secret: reverse(SECRET_EVENT_IDS),
};

/** Turns a message from the event worker into the value a stream yields. */
export function toEvent(m: EventPayload): unknown {
  const domain = 'name' in m ? { name: m.name, uuid: m.uuid } : undefined;
  switch (m.k) {
    case 'lifecycle':
      return lifecycleEvent(domain!, m.event, m.detail);
    case 'reboot':
      return { kind: 'reboot', domain };
    case 'migration-iteration':
      return { kind: 'migration-iteration', domain, iteration: m.iteration };
    case 'job-completed':
      return { kind: 'job-completed', domain, stats: m.stats };
    case 'qemu':
      return qemuMonitorEvent(domain!, m.event, m.seconds, m.micros, m.details);
    case 'generic': {
      const kind = EVENT_NAMES[m.family][m.eventId] ?? `unknown-${m.eventId}`;
      // the agent's lifecycle gets words for its numbers, like the lifecycle event
      if (m.family === 'domain' && kind === 'agent-lifecycle') {
        return agentLifecycleEvent(m.event.domain as DomainIdentity, Number(m.event.state), Number(m.event.reason));
      }
      return { kind, ...m.event };
    }
  }
}

export class EventRegistry {
  private readonly subscriptions = new Set<Subscription>();
  private readonly registrations = new Map<string, Registration>();
  private readonly byId = new Map<number, Registration>();
  /** Registration RPCs run one after another, so a deregistration always lands before a later registration. */
  private ops: Promise<void> = Promise.resolve();

  constructor(private readonly host: RegistryHost) {}

  private isOpen(): boolean {
    return this.host.acceptsRegistrations;
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  get registrationCount(): number {
    return this.registrations.size;
  }

  /** Opens a stream served by the registrations `specs` describe. */
  subscribe<T>(options: SubscriptionOptions, what: string, specs: RegistrationSpec[], closedError: () => LibvirtError, accept?: (m: EventPayload) => boolean): EventStream<T> {
    const sub: Subscription = { registrations: [], accept, deliver: () => {}, gap: () => {}, end: () => {} };
    const stream = new EventStream<T>(options, what, () => this.unsubscribe(sub), (delta) => runtime.holdProcess(delta));
    sub.deliver = (m) => stream.queue.push(toEvent(m) as T);
    sub.gap = (g) => stream.queue.push(g as T);
    sub.end = (err) => stream.queue.end(err);
    if (!this.isOpen()) {
      const err = closedError();
      stream.settleReady(err);
      stream.queue.end(err);
      return stream;
    }
    this.subscriptions.add(sub);
    sub.registrations = specs.map((spec) => this.join(spec, sub));
    Promise.all(sub.registrations.map((r) => r.registered)).then(
      () => stream.settleReady(),
      (err: unknown) => {
        stream.settleReady(err);
        stream.queue.end(err); // → unsubscribe
      },
    );
    return stream;
  }

  /** Delivers one event from the event worker to the streams of its registration. */
  deliver(m: EventPayload): void {
    const reg = this.byId.get(m.sub);
    if (reg) for (const s of reg.subscribers) if (!s.accept || s.accept(m)) s.deliver(m);
  }

  /** Ends every stream with `reason` (the connection is gone: nothing to deregister). */
  endAll(reason: unknown): void {
    const subs = [...this.subscriptions];
    this.subscriptions.clear();
    this.registrations.clear();
    this.byId.clear();
    for (const s of subs) s.end(reason);
  }

  /**
   * The connection was lost and is being re-established: libvirt dropped every callback with it, so
   * there is nothing to deregister; the streams stay open.
   */
  suspend(): void {
    for (const r of this.registrations.values()) r.callbackId = undefined;
  }

  /**
   * The connection is back: every stream yields `gap`, then each registration is made again on the new
   * connection. A stream whose registration fails now ends with that error.
   */
  resume(gap: ConnectionGap): Promise<void> {
    for (const s of this.subscriptions) s.gap({ ...gap });
    const regs = [...this.registrations.values()];
    const done = regs.map((reg) => {
      reg.registered = this.op(async (prepare) => {
        if (this.registrations.get(reg.key) !== reg) return; // its last stream left meanwhile
        reg.callbackId = await runtime.eventCommand(await prepare(reg.command(reg.id)));
      });
      return reg.registered.catch((err: unknown) => {
        this.forget(reg);
        for (const s of [...reg.subscribers]) s.end(err);
      });
    });
    return Promise.all(done).then(() => undefined);
  }

  /** Deregisters everything (after every queued registration), then ends the streams. */
  async close(deregister: boolean): Promise<void> {
    const subs = [...this.subscriptions];
    const regs = [...this.registrations.values()];
    this.subscriptions.clear();
    this.registrations.clear();
    await this.op(async (prepare) => {
      if (deregister) for (const r of regs) await this.deregister(r, prepare);
    }).catch(() => undefined);
    this.byId.clear();
    for (const s of subs) s.end();
  }

  /** Joins (or creates) the registration for `spec`; a new one is registered in libvirt by `start`. */
  private join(spec: RegistrationSpec, sub: Subscription): Registration {
    let reg = this.registrations.get(spec.key);
    if (!reg) {
      const created: Registration = {
        key: spec.key,
        id: ++registrationSeq,
        kind: spec.kind,
        family: spec.family,
        callbackId: undefined,
        registered: Promise.resolve(),
        subscribers: new Set(),
        command: spec.command,
      };
      this.registrations.set(spec.key, created);
      this.byId.set(created.id, created);
      // op() holds calls made after this one until libvirt has registered the callback.
      created.registered = this.op(async (prepare) => {
        created.callbackId = await runtime.eventCommand(await prepare(spec.command(created.id)));
      });
      created.registered.catch(() => this.forget(created));
      reg = created;
    }
    reg.subscribers.add(sub);
    return reg;
  }

  /** The stream left: registrations it was the last subscriber of are deregistered (a failure rejects). */
  private unsubscribe(sub: Subscription): Promise<void> | undefined {
    if (!this.subscriptions.delete(sub)) return undefined;
    const ops: Promise<void>[] = [];
    for (const reg of sub.registrations) {
      reg.subscribers.delete(sub);
      if (reg.subscribers.size > 0 || this.registrations.get(reg.key) !== reg) continue;
      this.forget(reg);
      // Queued after its registration; a new registration for the same filter queues after this.
      if (this.isOpen()) ops.push(this.op((prepare) => this.deregister(reg, prepare)));
    }
    return ops.length === 0 ? undefined : Promise.all(ops).then(() => undefined);
  }

  private forget(reg: Registration): void {
    if (this.registrations.get(reg.key) === reg) this.registrations.delete(reg.key);
    this.byId.delete(reg.id);
  }

  /** Runs registration RPCs in order, each exclusive on the connection (entered now, so later calls wait). */
  private op(fn: (prepare: PrepareCommand) => Promise<void>): Promise<void> {
    const previous = this.ops;
    const op = this.host.exclusive(async (prepare) => {
      await previous;
      await fn(prepare);
    });
    this.ops = op.catch(() => undefined);
    return op;
  }

  private async deregister(reg: Registration, prepare: PrepareCommand): Promise<void> {
    const callbackId = reg.callbackId;
    if (callbackId === undefined) return;
    reg.callbackId = undefined;
    // conn is filled in by prepare (the libvirt connection the registration lives on)
    try {
      await runtime.eventCommand(await prepare({ cmd: 'deregister', conn: 0n, kind: reg.kind, ...(reg.family ? { family: reg.family } : {}), callbackId }));
    } catch (err) {
      // Gone with its connection (closed, lost, or the lane it lived on retired): nothing left to undo.
      if (!this.isOpen() || (err instanceof LibvirtError && err.isConnectionLost)) return;
      throw err;
    }
  }
}
