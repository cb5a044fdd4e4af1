export * from './errors.js';
export * from './protocol.js';
export * from './transport.js';
export { GuestAgent, type GuestAgentOptions, type AgentCallOptions, type AgentTrafficEntry, type WaitReadyOptions } from './agent.js';
export type { ExecOptions, ExecResult } from './exec.js';
export type { ReadFileOptions, WriteFileOptions } from './files.js';
