import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread from a module next to the caller. Built code (dist/*.js) loads directly; when the
 * library runs from its TypeScript sources (tests, tsx), the worker first registers tsx's loader,
 * because Node's worker threads do not inherit the parent's TypeScript hooks.
 */
export function spawnWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  // Workers inherit the process's Node options; `--input-type` (a program started with `node
  // --input-type=module -e …`) makes Node refuse every worker started from a file.
  if (options.execArgv === undefined && process.execArgv.some(isInputType)) options = { ...options, execArgv: withoutInputType(process.execArgv) };
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  // require.resolve finds the CommonJS build; the worker needs the ESM one beside it.
  const tsxApi = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(code, { ...options, eval: true });
}

function isInputType(arg: string): boolean {
  return arg === '--input-type' || arg.startsWith('--input-type=');
}

function withoutInputType(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    if (execArgv[i] === '--input-type') i++; // and its value
    else if (!isInputType(execArgv[i]!)) out.push(execArgv[i]!);
  }
  return out;
}
