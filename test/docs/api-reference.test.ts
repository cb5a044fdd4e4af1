/**
 * `npm run docs` builds the API reference without a single warning (an exported signature that names
 * an unexported type, a broken {@link}), with one page per layer.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../cli/run-cli.js';

const run = promisify(execFile);
const out = mkdtempSync(join(tmpdir(), 'lq-apidoc-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('API reference', { timeout: 300_000 }, () => {
  it('builds with TypeDoc, warnings treated as errors, a page per layer', async () => {
    const typedoc = join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');
    const r = await run(process.execPath, [typedoc, '--treatWarningsAsErrors', '--out', out], { cwd: ROOT, maxBuffer: 16 * 2 ** 20 });
    expect(r.stdout + r.stderr).not.toMatch(/warning|error/i);
    for (const layer of ['qmp', 'libvirt', 'domain', 'schema', 'generated', 'hybrid', 'migration', 'agent', 'proxy', 'testing', 'common_errors']) {
      expect(existsSync(join(out, 'modules', `${layer}.html`)), layer).toBe(true);
    }
    // the reference documents the public classes, not their private members
    const hypervisor = readFileSync(join(out, 'classes', 'hybrid.Hypervisor.html'), 'utf8');
    expect(hypervisor).toContain('guests');
    expect(hypervisor).not.toContain('guestCache'); // a private field of Hypervisor
  });
});
