export * from './transport.js';
export * from './command-map.js';
export * from './errors.js';
export { MessageFramer, encodeMessage, DEFAULT_MAX_MESSAGE_BYTES, type FramerSink } from './framing.js';
export { StreamTransport, type StreamTarget, type StreamTransportOptions } from './stream-transport.js';
export { redact, isSecretKey, REDACTED } from './redact.js';
export {
  QmpClient,
  type Runstate,
  type QmpGreeting,
  type CommandValidator,
  type QmpLogger,
  type TrafficDirection,
  type QmpClientOptions,
  type QmpOpenOptions,
  type QmpTarget,
  type QmpConnectOptions,
  type EventsOptions,
  type WaitForEventOptions,
  type EventMatch,
} from './client.js';
export { JsonStreamer, QEMU_JSON_LIMITS, type JsonStreamLimits, type JsonStreamItem } from './json-streamer.js';
export { QmpServerSession, type QmpServerSessionOptions, type QmpServerSessionHooks, type QmpServerRequest, type QmpServerReply } from './server-session.js';
