/**
 * The root of every error libqemu throws. Each layer subclasses it (QmpCommandError, LibvirtError,
 * SchemaError, PolicyError, …) so that callers can tell "ours" from anything else with one instanceof,
 * and every error carries a hint: what to do about it.
 */
export class LibqemuError extends Error {
  /** What the caller can do about it, in one sentence (shown by the CLI under the message). */
  readonly hint: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** A public call was given an argument it cannot use. */
export class InvalidArgumentError extends LibqemuError {}
