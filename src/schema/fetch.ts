/**
 * Getting a QEMU's schema: over any QMP client, from a QEMU binary started just for that, or from a
 * saved file. Only the clients' public API is used, so this works through every route (direct
 * monitor, second monitor, libvirt passthrough).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Duplex } from 'node:stream';
import { QmpClient } from '../qmp/client.js';
import { StreamTransport } from '../qmp/stream-transport.js';
import { SchemaError } from './errors.js';
import { SchemaModel, type QemuVersionInfo, type RawSchemaInfo } from './model.js';

/** Anything that can run a QMP command: every QmpClient (typed or not) fits. */
export interface CommandRunner {
  execute(command: 'query-qmp-schema' | 'query-version'): Promise<unknown>;
}

/** The saved-schema file format written by `libqemu gen --save-schema` (a bare SchemaInfo[] is accepted too). */
export interface SavedSchema {
  version: QemuVersionInfo;
  schema: RawSchemaInfo[];
}

function asVersion(v: unknown): QemuVersionInfo {
  const q = (v as { qemu?: Record<string, unknown> } | undefined)?.qemu;
  if (!q || typeof q.major !== 'number' || typeof q.minor !== 'number' || typeof q.micro !== 'number') {
    throw new SchemaError('', `query-version returned something unexpected: ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  const pkg = (v as { package?: unknown }).package;
  return { qemu: { major: q.major, minor: q.minor, micro: q.micro }, package: typeof pkg === 'string' ? pkg : '' };
}

/** Asks a connected QEMU for its version and schema and builds the model. */
export async function fetchSchema(client: CommandRunner): Promise<SchemaModel> {
  const [version, raw] = await Promise.all([client.execute('query-version'), client.execute('query-qmp-schema')]);
  return SchemaModel.fromIntrospection(raw, asVersion(version));
}

/** The version alone (one cheap round trip), e.g. to key a cache when the greeting is synthesised. */
export async function fetchVersion(client: CommandRunner): Promise<QemuVersionInfo> {
  return asVersion(await client.execute('query-version'));
}

export interface BinaryOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Starts `binary` with no machine, no devices and QMP on stdio, reads its schema, and makes sure it
 * is gone afterwards (killed if it did not quit).
 */
export async function fetchSchemaFromBinary(binary: string, options: BinaryOptions = {}): Promise<SchemaModel> {
  if (typeof binary !== 'string' || binary === '') {
    throw new SchemaError('', 'a QEMU binary path is required', { hint: 'e.g. --qemu /usr/bin/qemu-system-x86_64' });
  }
  const child = spawn(binary, ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', 'stdio'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      stderr += String(err);
      resolve();
    });
  });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const client = new QmpClient(new StreamTransport({ stream: Duplex.from({ readable: child.stdout, writable: child.stdin }) }), {
    timeoutMs,
    connectTimeoutMs: timeoutMs,
    handshakeTimeoutMs: timeoutMs,
  });
  try {
    await client.open(options.signal ? { signal: options.signal } : {});
    return await fetchSchema(client);
  } catch (err) {
    throw new SchemaError('', `could not read the schema from ${binary}: ${err instanceof Error ? err.message : String(err)}${stderr ? `\n${stderr.trim()}` : ''}`, {
      cause: err,
      hint: 'check that the path is a qemu-system-* binary that runs here (try it with --version)',
    });
  } finally {
    await client.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
}

/** Reads a saved schema: `{ version, schema }` as written by `libqemu gen --save-schema`, or a bare SchemaInfo[]. */
export async function loadSchemaFile(path: string, version?: QemuVersionInfo): Promise<SchemaModel> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new SchemaError('', `could not read schema file ${path}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      hint: 'pass a JSON file holding query-qmp-schema\'s "return" value, or one written by --save-schema',
    });
  }
  if (Array.isArray(parsed)) return SchemaModel.fromIntrospection(parsed, version);
  const saved = parsed as Partial<SavedSchema>;
  return SchemaModel.fromIntrospection(saved.schema, saved.version ? asVersion(saved.version) : version);
}

/** The content of a saved-schema file for `model` (needs the raw schema and version). */
export function serializeSchema(model: SchemaModel): string {
  return `${JSON.stringify({ version: model.version, schema: model.raw })}\n`;
}
