/**
 * A consumer's first step: install libqemu into a project of their own, from a git URL (npm runs the
 * `prepare` script, which builds dist/) and from an `npm pack` tarball, then import every entry
 * point (ESM and require), type-check a TypeScript file against the shipped .d.ts and run the bin.
 * The repository is cloned from the committed HEAD, as a user's git dependency would see it.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../cli/run-cli.js';

const run = promisify(execFile);
// npm installs with network access to the registry (for the git dependency's devDependencies);
// the local cache makes repeated runs fast.
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
const SLOW = { timeout: 600_000 };

let tmp: string;
let clone: string;

async function sh(file: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' };
  delete env.LIBVIRT_DEFAULT_URI;
  return run(file, args, { cwd, env, maxBuffer: 64 * 2 ** 20 });
}

/** A fresh consumer project (ESM) with `libqemu` installed from `spec`. */
async function consumer(name: string, spec: string): Promise<string> {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, type: 'module' }));
  await sh('npm', ['install', ...NPM_FLAGS, spec], dir);
  return dir;
}

/** What a consumer does first: import each entry, require it, type-check against it, run the bin. */
async function checkConsumer(dir: string): Promise<void> {
  const pkg = join(dir, 'node_modules', 'libqemu');
  const shipped = readdirSync(pkg).sort();
  expect(shipped).toEqual(expect.arrayContaining(['CHANGELOG.md', 'LICENSE', 'README.md', 'bin', 'dist', 'native', 'package.json']));
  expect(shipped).not.toContain('src'); // the build, not the TypeScript sources

  writeFileSync(
    join(dir, 'esm.js'),
    `const root = await import('libqemu');
const qmp = await import('libqemu/qmp');
const testing = await import('libqemu/testing');
console.log(JSON.stringify({ Hypervisor: typeof root.Hypervisor, QmpClient: typeof qmp.QmpClient, startPrivateLibvirtd: typeof testing.startPrivateLibvirtd }));
`,
  );
  const esm = await sh(process.execPath, ['esm.js'], dir);
  expect(JSON.parse(esm.stdout)).toEqual({ Hypervisor: 'function', QmpClient: 'function', startPrivateLibvirtd: 'function' });

  writeFileSync(join(dir, 'cjs.cjs'), `const { QmpClient } = require('libqemu/qmp'); const { Hypervisor } = require('libqemu'); console.log(typeof QmpClient, typeof Hypervisor);\n`);
  const cjs = await sh(process.execPath, ['cjs.cjs'], dir);
  expect(cjs.stdout.trim()).toBe('function function');

  // libvirt calls run on worker threads started from the package's files; they start in a program run as
  // `node --input-type=module -e …` too (workers inherit that flag, and Node refuses it for a file).
  const inline = "const { Connection } = await import('libqemu'); const c = await Connection.open('test:///default'); console.log((await c.listAllDomains()).length); await c.close();";
  const evalRun = await sh(process.execPath, ['--input-type=module', '-e', inline], dir);
  expect(Number(evalRun.stdout.trim())).toBeGreaterThan(0);

  // The shipped declarations type-check under strict, and a wrong argument type is caught.
  writeFileSync(
    join(dir, 'use.ts'),
    `import { QmpClient } from 'libqemu/qmp';
import { Hypervisor, QemuClient } from 'libqemu';
export async function f(): Promise<string> {
  const c = await QemuClient.connect({ path: '/tmp/x.sock' });
  const s = await c.execute('query-status');
  // @ts-expect-error set_link's "up" is a boolean
  await c.execute('set_link', { name: 'net0', up: 'no' });
  void Hypervisor; void QmpClient;
  return s.status;
}
`,
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] }, files: ['use.ts'] }),
  );
  await sh(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir);
  // No private members in what consumers see.
  const guestDts = readFileSync(join(pkg, 'dist', 'src', 'hybrid', 'hypervisor.d.ts'), 'utf8');
  expect(guestDts).not.toMatch(/^\s+private (?!constructor)/m);
  expect(readdirSync(join(pkg, 'dist', 'src', 'qmp')).filter((f) => f.endsWith('.map'))).toEqual([]);

  const version = await sh('npx', ['--no-install', 'libqemu', '--version'], dir);
  expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  // The bin reaches QEMU-facing code: a socket that is not there is a connection failure (exit 6).
  const refused = await sh('npx', ['--no-install', 'libqemu', '-s', join(tmp, 'absent.sock'), '--json', 'exec', 'query-status'], dir).catch((e: { code: number; stderr: string }) => e);
  expect(refused).toMatchObject({ code: 6 });
  expect(JSON.parse((refused as { stderr: string }).stderr)).toMatchObject({ error: { type: 'QmpClosedError', exitCode: 6 } });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lq-install-'));
  clone = join(tmp, 'libqemu.git');
  await sh('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone], tmp);
}, 120_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('installing libqemu into a consumer project', SLOW, () => {
  it('from a git URL: prepare builds dist/, the entries import, the bin runs', async () => {
    const head = (await sh('git', ['rev-parse', 'HEAD'], clone)).stdout.trim();
    const dir = await consumer('from-git', `git+file://${clone}#${head}`);
    await checkConsumer(dir);
  });

  it('from an npm pack tarball', async () => {
    await sh('npm', ['ci', ...NPM_FLAGS], clone); // prepare builds dist/
    const packed = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], clone);
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    const dir = await consumer('from-tarball', join(tmp, filename));
    await checkConsumer(dir);
  });
});
