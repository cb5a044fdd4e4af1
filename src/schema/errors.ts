import { LibqemuError } from '../common/errors.js';

/**
 * A command's arguments do not match the schema of the QEMU they are sent to, or a schema could not
 * be read. `path` names the offending spot, e.g. `set_link.up` or `blockdev-add.cache.direct`.
 */
export class SchemaError extends LibqemuError {
  /** Where the problem is: the command name followed by member names and `[index]`es. */
  readonly path: string;

  constructor(path: string, problem: string, options?: { cause?: unknown; hint?: string }) {
    super(path ? `${path}: ${problem}` : problem, options);
    this.path = path;
  }
}
