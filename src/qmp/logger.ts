/** Diagnostics sink: dropped replies, protocol errors, listener failures. */
export interface QmpLogger {
  debug?(message: string, details?: Record<string, unknown>): void;
  warn?(message: string, details?: Record<string, unknown>): void;
}
