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
  if (!moduleUrl.pathname.endsWith('.ts')) return newWorker(moduleUrl, options);
  // require.resolve finds the CommonJS build; the worker needs the ESM one beside it.
  const tsxApi = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return newWorker(code, { ...options, eval: true });
}

/**
 * new Worker(), minus the flags Node refuses in an explicit execArgv (V8 options such as
 * --max-old-space-size, process-wide ones such as --title: a program run with them still gets its
 * workers, which share the process's V8 flags anyway). Node names the refused flags in its error.
 */
function newWorker(what: URL | string, options: WorkerOptions): Worker {
  try {
    return new Worker(what, options);
  } catch (err) {
    const refused = (err as { code?: string }).code === 'ERR_WORKER_INVALID_EXEC_ARGV' && options.execArgv ? refusedFlags(String((err as Error).message)) : undefined;
    if (!refused) throw err;
    const execArgv = options.execArgv!.filter((a) => !refused.has(flagName(a)));
    return new Worker(what, { ...options, execArgv });
  }
}

/**
 * The names of the flags in Node's "Initiated Worker with invalid execArgv flags: --a, --b=1" (undefined
 * if it names none): Node's error carries them in its message only.
 */
function refusedFlags(message: string): Set<string> | undefined {
  const list = message.slice(message.lastIndexOf(': ') + 2).split(', ').map((f) => f.trim()).filter((f) => f.startsWith('-'));
  return list.length > 0 ? new Set(list.map(flagName)) : undefined;
}

/** `--b=1` → `--b`. */
function flagName(arg: string): string {
  return arg.split('=')[0]!;
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
