/**
 * Which QMP routes a guest offers, decided in one place for `hv.guests()` and `guest.qmpRoutes()`,
 * plus the facts about libvirt states and errors the facade asks about.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type { DomainStateName } from '../libvirt/domain.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { QemuClientOptions } from '../schema/client.js';
import type { QmpRoute } from './guest-client.js';

/** How to reach a guest's QEMU: one route, or 'auto' (the second monitor when it answers, else passthrough). */
export type QmpVia = 'auto' | QmpRoute;

/** What `guest.qmp()` takes: the route, the policy's opt-ins, and options for the client on it. */
export interface GuestQmpOptions {
  /** How to reach QEMU (default 'auto': the second monitor when reachable from this host, else passthrough). */
  via?: QmpVia;
  /** Commands this client may send although libvirt owns the state they change (or 'all'). */
  allow?: readonly string[] | 'all';
  /** Negotiate out-of-band execution (monitor route only; passthrough has none). */
  oob?: boolean;
  /** Default per-command timeout (ms; default 30 000). */
  timeoutMs?: number;
  /** Check commands against the connected QEMU's schema before sending (default true). */
  validate?: boolean;
  /** Passthrough: only these QEMU events, filtered by libvirt itself. */
  events?: readonly string[];
  /** Monitor handshake limit (ms; default 5000, 1000 when 'auto' may still fall back to passthrough). */
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Anything else QemuClient accepts (logger, onTraffic, onSchemaWarning, …). */
  client?: Omit<QemuClientOptions, 'timeoutMs' | 'validate' | 'oob'>;
}

/** The libvirt states in which QEMU runs (and so has a monitor). */
const RUNNING_STATES: ReadonlySet<string> = new Set<DomainStateName>(['running', 'paused', 'blocked', 'pmsuspended']);

export function isRunningState(state: DomainStateName | string): boolean {
  return RUNNING_STATES.has(state);
}

/** libvirt says the domain does not exist (any more: a transient guest disappears when it stops). */
export function isNoDomainError(err: unknown): err is LibvirtError {
  return err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN';
}

/** libvirt refused because the domain has no running QEMU (or is gone). */
export function isNotRunningError(err: unknown): err is LibvirtError {
  return err instanceof LibvirtError && (err.codeName === 'VIR_ERR_OPERATION_INVALID' || err.codeName === 'VIR_ERR_NO_DOMAIN');
}

/** Checks a `via` option; `where` names the call for the message (e.g. 'guest.qmp'). */
export function checkVia(via: unknown, where: string): QmpVia {
  if (via === undefined) return 'auto';
  if (via !== 'auto' && via !== 'monitor' && via !== 'passthrough') {
    throw new InvalidArgumentError(`${where}: via must be 'auto', 'monitor' or 'passthrough', got ${JSON.stringify(via)}`, {
      hint: "'monitor' = the guest's second QMP socket, 'passthrough' = through libvirt (virDomainQemuMonitorCommand); omit it for 'auto'",
    });
  }
  return via;
}

export interface RouteFacts {
  /** QEMU runs (see isRunningState). */
  running: boolean;
  /** The second monitor's socket path from the domain XML, if it has one. */
  monitorSocket: string | undefined;
  /** The daemon is on this host, so the socket path can be reached from here. */
  local: boolean;
  /**
   * Whether the monitor answers right now. Without it a monitor in the XML of a local running guest
   * counts as offered (a listing should not dial every guest's socket).
   */
  monitorAnswers?: () => Promise<boolean>;
}

/** The routes, best first: 'monitor' (a reachable second monitor), then 'passthrough' (any running guest). */
export async function qmpRoutes(facts: RouteFacts): Promise<QmpRoute[]> {
  if (!facts.running) return [];
  const routes: QmpRoute[] = [];
  if (facts.local && facts.monitorSocket !== undefined && (facts.monitorAnswers ? await facts.monitorAnswers() : true)) routes.push('monitor');
  routes.push('passthrough');
  return routes;
}
