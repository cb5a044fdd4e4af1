import { InvalidArgumentError } from '../common/errors.js';
import { FdPassingError } from './errors.js';
import type { ExecuteOptions } from './command-map.js';
import type { QmpLogger } from './logger.js';
import { redact } from './redact.js';
import { StreamTransport, type StreamTarget, type StreamTransportOptions } from './stream-transport.js';
import type { QmpMessage, QmpTransport } from './transport.js';
import type { CommandValidator } from './validator.js';

export type TrafficDirection = 'in' | 'out';

export interface QmpClientOptions<O extends {} = {}> {
  /** Default per-command timeout in ms (default 30 000; 0 = none). Also the default for waitForEvent. */
  timeoutMs?: number;
  /** Time allowed to open the transport (default 10 000; 0 = none). */
  connectTimeoutMs?: number;
  /** Time allowed for greeting + qmp_capabilities (default 10 000; 0 = none). */
  handshakeTimeoutMs?: number;
  /** Enable out-of-band execution when the server offers it (default false). */
  oob?: boolean;
  /** In-band commands in flight at once (default 8, QMP's recommendation; 1 for non-pipelining transports). */
  maxInFlight?: number;
  /** Hooks around every command, run in this order (see CommandValidator). More can be added with use(). */
  validators?: readonly CommandValidator<O>[];
  /** Sees every message in and out, with secret members redacted. */
  onTraffic?: (direction: TrafficDirection, message: QmpMessage) => void;
  logger?: QmpLogger;
  /** Default buffer size of events() subscriptions (default 1000). */
  eventBufferSize?: number;
}

export interface QmpOpenOptions {
  signal?: AbortSignal;
}

export type QmpTarget = StreamTarget | { transport: QmpTransport };
export interface QmpConnectOptions<O extends {} = {}> extends QmpClientOptions<O>, StreamTransportOptions, QmpOpenOptions {}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_EVENT_BUFFER = 1000;

export function checkTimeout(name: string, v: number | undefined): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
    throw new InvalidArgumentError(`${name} must be a finite number ≥ 0 (0 = no timeout), got ${String(v)}`);
  }
}

/** Validates the client options that are numbers; throws InvalidArgumentError naming the bad one. */
export function checkClientOptions(transport: QmpTransport, options: QmpClientOptions<never>): void {
  if (!transport || typeof transport.open !== 'function' || typeof transport.send !== 'function') {
    throw new InvalidArgumentError('QmpClient: transport must implement QmpTransport', { hint: 'use QmpClient.connect({ path }) or pass a StreamTransport' });
  }
  checkTimeout('timeoutMs', options.timeoutMs);
  checkTimeout('connectTimeoutMs', options.connectTimeoutMs);
  checkTimeout('handshakeTimeoutMs', options.handshakeTimeoutMs);
  if (options.maxInFlight !== undefined && (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1)) {
    throw new InvalidArgumentError(`maxInFlight must be a positive integer, got ${String(options.maxInFlight)}`, {
      hint: 'QMP recommends at most 8 in-band commands in flight',
    });
  }
  if (options.validators !== undefined && !Array.isArray(options.validators)) {
    throw new InvalidArgumentError('validators must be an array of CommandValidator objects', { hint: 'e.g. { validators: [{ validate(call) { … } }] }' });
  }
}

/** Validates a call's name, arguments and options (not whether the client can send it now). */
export function checkCallInput(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions, oobEnabled: boolean, transport: QmpTransport): void {
  if (typeof command !== 'string' || command === '') throw new InvalidArgumentError(`execute: command must be a non-empty string, got ${JSON.stringify(command)}`, { hint: 'e.g. "query-status"' });
  if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
    throw new InvalidArgumentError(`execute(${command}): args must be an object or undefined`, { hint: 'QMP arguments are a JSON object of named members' });
  }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`execute(${command}): options must be an object`);
  checkTimeout('timeoutMs', options.timeoutMs);
  if (options.fds !== undefined) checkFds(command, options.fds, transport);
  if (options.orderingKey !== undefined && (options.orderingKey === null || (typeof options.orderingKey !== 'object' && typeof options.orderingKey !== 'function'))) {
    throw new InvalidArgumentError(`execute(${command}): orderingKey must be an object (compared by identity)`, { hint: 'e.g. the object that stands for one caller, such as its connection' });
  }
  if (options.oob && !oobEnabled) {
    throw new InvalidArgumentError(`execute(${command}, { oob: true }): out-of-band execution is not enabled on this connection`, {
      hint: 'connect with { oob: true } to a QEMU whose greeting offers "oob" (and the command must allow oob)',
    });
  }
  options.signal?.throwIfAborted();
}

/** The onTraffic hook wrapped: secrets redacted, and a failing hook never breaks the protocol. */
export function trafficTap(onTraffic: QmpClientOptions<never>['onTraffic']): (direction: TrafficDirection, msg: QmpMessage) => void {
  if (!onTraffic) return () => {};
  return (direction, msg) => {
    try {
      onTraffic(direction, redact(msg));
    } catch {
      // logging must never break the protocol
    }
  };
}

/** The transport QmpClient.connect uses for `target`: the one given, or a stream transport to it. */
export function transportFor(target: QmpTarget, options: StreamTransportOptions): QmpTransport {
  if (target === null || typeof target !== 'object') {
    throw new InvalidArgumentError(`QmpClient.connect: target must be an object, got ${String(target)}`, { hint: 'pass { path }, { host, port }, { fd }, { stream } or { transport }' });
  }
  if ('transport' in target) return target.transport;
  return new StreamTransport(target, {
    ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
    ...(options.maxOutboundBytes === undefined ? {} : { maxOutboundBytes: options.maxOutboundBytes }),
    ...(options.fdPassing === undefined ? {} : { fdPassing: options.fdPassing }),
  });
}

/** `fds` of execute(): small non-negative integers, on a transport that can pass them. */
function checkFds(command: string, fds: unknown, transport: QmpTransport): void {
  if (!Array.isArray(fds) || fds.some((fd) => !Number.isInteger(fd) || fd < 0) || fds.length > 253) {
    throw new InvalidArgumentError(`execute(${command}, { fds }): fds must be an array of at most 253 open file descriptors`, { hint: 'e.g. { fds: [fs.openSync(path, "r+")] }' });
  }
  const caps = transport.capabilities;
  if (fds.length > 0 && !caps.fdPassing) {
    const why = caps.fdPassingUnavailable;
    throw new FdPassingError(`execute(${command}, { fds }): ${transport.description} cannot pass file descriptors${why ? `: ${why.reason}` : ''}`, {
      hint: why?.hint ?? 'pass fds on a unix-socket connection made with { fdPassing: unixFdPassing } (QmpClient.connect({ path }, { fdPassing: unixFdPassing })); TCP, and routes whose capabilities say fdPassing: false, cannot carry them',
    });
  }
  if (caps.maxFds !== undefined && fds.length > caps.maxFds) {
    throw new FdPassingError(`execute(${command}, { fds }): ${transport.description} passes at most ${caps.maxFds} file descriptor(s) per command, got ${fds.length}`, {
      hint: 'send one command per fd (e.g. one add-fd per fd, all with the same fdset-id)',
    });
  }
}
