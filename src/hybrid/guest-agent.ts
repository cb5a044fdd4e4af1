/**
 * guest.agent(): the typed agent client (src/agent) over libvirt's agent channel
 * (virDomainQemuAgentCommand), and the agent's lifecycle as a stream.
 *
 * Agent commands run on the Hypervisor's connection: an agent that stopped answering holds its call for
 * the whole timeout, but only on one of the connection's lanes, while the others go on serving.
 */
import { AgentCommandError, AgentCommandNotSupportedError, AgentTimeoutError, AgentUnavailableError, GuestAgent, type AgentRequest, type AgentSendOptions, type AgentTransport, type GuestAgentOptions } from '../agent/index.js';
import { Connection } from '../libvirt/connection.js';
import type { Domain } from '../libvirt/domain.js';
import { LibvirtError } from '../libvirt/errors.js';

/** libvirt's `timeout` argument of virDomainQemuAgentCommand that means "send, do not wait for a reply". */
const AGENT_COMMAND_NOWAIT = 0;
/** virDomainShutdownFlagValues / virDomainRebootFlagValues: through the guest agent. */
const VIR_DOMAIN_GUEST_AGENT = 2;
/** Added to the executor's deadline beyond the agent timeout libvirt enforces itself: a backstop only. */
const EXECUTOR_GRACE_MS = 15_000;

/**
 * libvirt's agent errors → the agent layer's. libvirt hands an agent's own error reply back as an
 * internal error whose message carries the agent's description; there is no error class to go by.
 */
export function agentErrorFromLibvirt(err: unknown, command: string, timeoutMs: number): unknown {
  if (!(err instanceof LibvirtError)) return err;
  const msg = err.message;
  switch (err.codeName) {
    case 'VIR_ERR_AGENT_UNRESPONSIVE':
      if (/not available for now/i.test(msg)) return new AgentTimeoutError({ command, timeoutMs, detail: `libvirt got no answer within ${Math.ceil(timeoutMs / 1000)} s`, cause: err });
      return new AgentUnavailableError({ command, reason: 'not-connected', detail: msg.replace(/^[^:]*: /, ''), cause: err });
    case 'VIR_ERR_AGENT_UNSYNCED':
      return new AgentUnavailableError({ command, reason: 'unsynced', detail: msg, cause: err });
    case 'VIR_ERR_ARGUMENT_UNSUPPORTED':
      if (/agent is not configured/i.test(msg)) return new AgentUnavailableError({ command, reason: 'not-configured', detail: 'the domain has no guest agent channel', cause: err });
      return err;
    case 'VIR_ERR_OPERATION_INVALID':
      if (/not running/i.test(msg)) return new AgentUnavailableError({ command, reason: 'not-running', detail: 'the guest is not running', cause: err });
      return err;
    case 'VIR_ERR_NO_DOMAIN':
      return new AgentUnavailableError({ command, reason: 'not-running', detail: 'the guest no longer exists (a transient guest that stopped)', cause: err });
    case 'VIR_ERR_INTERNAL_ERROR': {
      const reply = /unable to execute QEMU agent command '[^']*': ([\s\S]*)$/.exec(msg);
      if (reply) {
        const desc = reply[1]!.trim();
        if (/has not been found/.test(desc)) return new AgentCommandNotSupportedError({ command, why: 'unknown', cause: err });
        if (/has been disabled/.test(desc)) return new AgentCommandNotSupportedError({ command, why: 'disabled', cause: err });
        return new AgentCommandError({ command, desc, cause: err });
      }
      if (/end of file from agent|agent.*(closed|disappeared)|guest agent disappeared/i.test(msg)) {
        return new AgentUnavailableError({ command, reason: 'disconnected', detail: msg.replace(/^[^:]*: /, ''), cause: err });
      }
      return err;
    }
    default:
      return err;
  }
}

/**
 * Where agent commands go: an open connection and the domain on it (shared; not closed by the
 * transport), or a URI and UUID to open a connection of the transport's own on first use.
 */
export type LibvirtAgentTransportOptions =
  | {
      connection: Connection;
      domain: Domain;
      /** For messages. */
      guestName: string;
    }
  | {
      /** The libvirt URI to open the agent's own connection to. */
      uri: string;
      /** The domain, found again by UUID on that connection. */
      uuid: string;
      /** For messages. */
      guestName: string;
    };

/** An AgentTransport through virDomainQemuAgentCommand, on a shared connection or one of its own (opened on first use). */
export class LibvirtAgentTransport implements AgentTransport {
  readonly description: string;
  private target: Promise<{ connection: Connection; domain: Domain }> | undefined;
  private closed = false;

  constructor(private readonly options: LibvirtAgentTransportOptions) {
    this.description = `libvirt agent channel of '${options.guestName}'`;
  }

  async send(request: AgentRequest, options: AgentSendOptions): Promise<unknown> {
    const command = request.execute;
    if (this.closed) throw new AgentUnavailableError({ command, reason: 'not-connected', detail: 'this agent client was closed', hint: 'get a new one with guest.agent()' });
    options.signal?.throwIfAborted();
    const { connection, domain } = await this.open();
    // guest-shutdown never replies: libvirt's own agent shutdown/reboot waits for QEMU's SHUTDOWN/RESET
    // instead, where a no-wait passthrough could give up on its guest-sync before sending anything.
    const mode = request.arguments?.mode ?? 'powerdown';
    if (command === 'guest-shutdown' && (mode === 'powerdown' || mode === 'reboot')) {
      const call = mode === 'reboot' ? domain.reboot({ flags: VIR_DOMAIN_GUEST_AGENT }) : domain.shutdown({ flags: VIR_DOMAIN_GUEST_AGENT });
      return call.then(
        () => undefined,
        (err: unknown) => {
          throw agentErrorFromLibvirt(err, command, options.timeoutMs);
        },
      );
    }
    const seconds = options.noReply ? AGENT_COMMAND_NOWAIT : Math.max(1, Math.ceil(options.timeoutMs / 1000));
    const call = domain.qemuAgentCommand({ ...request }, seconds, { timeoutMs: options.timeoutMs + EXECUTOR_GRACE_MS }).then(
      (reply) => {
        if (typeof reply !== 'object' || reply === null || !('return' in reply)) return undefined;
        return (reply as { return: unknown }).return;
      },
      (err: unknown) => {
        // Sent, and libvirt did not wait: what a command that never replies on success looks like.
        if (options.noReply && err instanceof LibvirtError && err.codeName === 'VIR_ERR_AGENT_UNRESPONSIVE' && /not available for now/i.test(err.message)) return undefined;
        if (err instanceof LibvirtError && err.isConnectionLost) this.forget(connection);
        throw agentErrorFromLibvirt(err, command, options.timeoutMs);
      },
    );
    if (!options.signal) return call;
    // The native call cannot be interrupted: an aborted caller stops waiting, the call ends on its own
    // (bounded by libvirt's agent timeout) and its outcome is dropped.
    const signal = options.signal;
    call.catch(() => undefined);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      call.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** The agent's lifecycle (connected/disconnected), from libvirt's events, on the transport's connection. */
  async lifecycle(options: { bufferSize?: number; signal?: AbortSignal } = {}): Promise<AgentLifecycleStream> {
    const { connection, domain } = await this.open();
    const source = connection.domainEvents({ domain, kinds: ['agent-lifecycle'], bufferSize: options.bufferSize ?? 64 });
    await source.ready;
    const stream: AgentLifecycleStream = {
      next: async () => {
        const r = await source.next();
        if (r.done) return { done: true, value: undefined };
        const ev = r.value as { domain: { name: string; uuid: string }; state?: unknown; reason?: unknown };
        return { done: false, value: { kind: 'agent-lifecycle', domain: ev.domain, state: agentLifecycleState(ev.state), reason: agentLifecycleReason(ev.reason) } };
      },
      return: async () => {
        await source.return();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    if (options.signal) {
      const signal = options.signal;
      const stop = () => void source.return();
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    }
    return stream;
  }

  async close(): Promise<void> {
    this.closed = true;
    const target = this.target;
    this.target = undefined;
    if (target) await target.then((t) => t.connection.close(), () => undefined).catch(() => undefined);
  }

  private open(): Promise<{ connection: Connection; domain: Domain }> {
    const o = this.options;
    if ('connection' in o) return Promise.resolve({ connection: o.connection, domain: o.domain });
    this.target ??= (async () => {
      const connection = await Connection.open(o.uri);
      try {
        return { connection, domain: await connection.lookupDomain(o.uuid) };
      } catch (err) {
        await connection.close().catch(() => undefined);
        throw err;
      }
    })();
    const target = this.target;
    target.catch(() => {
      if (this.target === target) this.target = undefined; // try again on the next call
    });
    return target;
  }

  private forget(connection: Connection): void {
    const target = this.target;
    if (!target) return;
    void target.then((t) => {
      if (t.connection !== connection) return;
      if (this.target === target) this.target = undefined;
      void connection.close().catch(() => undefined);
    });
  }
}

/** libvirt's agent-lifecycle state (virConnectDomainEventAgentLifecycleState: 1 connected, 2 disconnected), by number or name. */
export function agentLifecycleState(state: unknown): 'connected' | 'disconnected' {
  return state === 1 || state === 'connected' ? 'connected' : 'disconnected';
}

/** libvirt's agent-lifecycle reason (…Reason: 1 domain started, 2 channel event, else unknown), by number or name. */
export function agentLifecycleReason(reason: unknown): 'unknown' | 'domain-started' | 'channel' {
  if (reason === 1 || reason === 'domain-started') return 'domain-started';
  if (reason === 2 || reason === 'channel') return 'channel';
  return 'unknown';
}

/** The stream agent.lifecycle() returns; return() ends it. */
export interface AgentLifecycleStream extends AsyncIterableIterator<AgentLifecycleEvent> {
  return(): Promise<IteratorResult<AgentLifecycleEvent>>;
}

/** One agent-lifecycle event, as libvirt reports it. */
export interface AgentLifecycleEvent {
  kind: 'agent-lifecycle';
  domain: { name: string; uuid: string };
  state: 'connected' | 'disconnected';
  reason: 'unknown' | 'domain-started' | 'channel';
}

/** guest.agent()'s client: GuestAgent plus the lifecycle stream and close(). */
export class LibvirtGuestAgent extends GuestAgent {
  constructor(
    private readonly channel: LibvirtAgentTransport,
    options: GuestAgentOptions,
  ) {
    super(channel, options);
  }

  /**
   * The agent's connected/disconnected events (also in guest.events()). The stream ends with
   * return(), the signal, or close().
   */
  lifecycle(options: { bufferSize?: number; signal?: AbortSignal } = {}): Promise<AgentLifecycleStream> {
    return this.channel.lifecycle(options);
  }
}

const transports = new WeakMap<object, LibvirtAgentTransport>();

/**
 * @internal guest.agent(): the clients of one guest (`owner`, the Guest object) share its transport
 * (on the Hypervisor's connection), closed with the guest.
 */
export function guestAgent(owner: object, makeTransport: () => LibvirtAgentTransport, options: GuestAgentOptions = {}): LibvirtGuestAgent {
  let transport = transports.get(owner);
  if (!transport) {
    transport = makeTransport();
    transports.set(owner, transport);
  }
  return new LibvirtGuestAgent(transport, options);
}

/** @internal closes the agent connection of a guest being closed. */
export async function closeGuestAgent(guest: object): Promise<void> {
  const transport = transports.get(guest);
  transports.delete(guest);
  await transport?.close();
}
