import { fileURLToPath } from 'node:url';
import { runScript, type ChildResult } from '../harness/child.js';

export type { ChildResult };

const childScript = fileURLToPath(new URL('./fixtures/child.ts', import.meta.url));

/** Runs test/libvirt/fixtures/child.ts in its own Node process (through tsx); `onLine` sees each JSON line. */
export function runChild(args: string[], onLine?: (line: Record<string, unknown>) => void, timeoutMs = 90_000, env?: Record<string, string>): Promise<ChildResult> {
  return runScript(childScript, args, onLine, timeoutMs, env);
}
