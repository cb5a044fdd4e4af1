/**
 * The shell's view of the wire, as qmp-shell offers it: `-v` prints every command as it is sent,
 * `-l FILE` appends every message sent and received as a JSON line. Both read the QMP client's
 * traffic hook, which sees every message on every route with secrets already redacted.
 */
import { appendFileSync, chmodSync, closeSync, openSync } from 'node:fs';
import type { TrafficDirection } from '../../qmp/index.js';
import type { QmpMessage } from '../../qmp/transport.js';
import type { Output } from '../output.js';

export interface WireTraceOptions {
  out: Output;
  verbose: boolean;
  /** Append every message here (created 0600). */
  logFile?: string | undefined;
}

export class WireTrace {
  private started = false;
  private readonly fd: number | undefined;

  constructor(private readonly options: WireTraceOptions) {
    if (options.logFile) {
      // opened at once, so a path that cannot be written fails before anything is sent
      this.fd = openSync(options.logFile, 'a', 0o600);
      chmodSync(options.logFile, 0o600);
    }
  }

  /** From now on, messages are shown and logged (the shell's own set-up traffic is not). */
  start(): void {
    this.started = true;
  }

  /** The client's onTraffic hook. */
  readonly onTraffic = (direction: TrafficDirection, message: QmpMessage): void => {
    if (!this.started) return;
    if (this.fd !== undefined) appendFileSync(this.fd, `${JSON.stringify({ time: new Date().toISOString(), direction, message })}\n`);
    if (this.options.verbose && direction === 'out') {
      const { out } = this.options;
      if (out.json) out.line(JSON.stringify({ sent: message }));
      else out.line(JSON.stringify(message));
    }
  };

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}
