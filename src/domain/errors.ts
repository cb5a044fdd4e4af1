import { LibqemuError } from '../common/errors.js';

/** A domain XML that libqemu cannot work with (malformed, or not a <domain>). */
export class DomainXmlError extends LibqemuError {
  constructor(message: string, options: { hint: string; cause?: unknown }) {
    super(message, options);
  }
}

/** The directory for monitor sockets cannot be made private and usable by QEMU. */
export class MonitorDirError extends LibqemuError {
  readonly dir: string;

  constructor(options: {
    dir: string;
    /** What is wrong with it, e.g. "does not exist". */
    problem: string;
    hint: string;
    cause?: unknown;
  }) {
    super(`monitor socket directory ${options.dir}: ${options.problem}`, { hint: options.hint, cause: options.cause });
    this.dir = options.dir;
  }
}
