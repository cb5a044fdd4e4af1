/**
 * `libqemu gen` as a function: read a schema (from a QEMU binary it starts, a QMP socket, a saved
 * file, or a client you already have), render the TypeScript module, optionally write it and the
 * schema itself.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import { QmpClient } from '../qmp/client.js';
import { renderModule, type RenderOptions } from './codegen.js';
import { fetchSchema, fetchSchemaFromBinary, loadSchemaFile, serializeSchema, type CommandRunner } from './fetch.js';
import type { QemuVersionInfo, SchemaModel } from './model.js';

export type SchemaSource =
  /** Start this QEMU binary (`-machine none -qmp stdio`) just to read its schema. */
  | { qemu: string }
  /** Connect to a QMP unix socket (the monitor must be free: QMP serves one client per socket). */
  | { socket: string }
  /** A JSON file: `{ version, schema }` (from `saveSchema`) or a bare `query-qmp-schema` reply. */
  | { file: string; version?: QemuVersionInfo }
  /** A client you already have (any route). */
  | { client: CommandRunner }
  /** A model you already have. */
  | { model: SchemaModel };

export interface GenerateTypesOptions {
  source: SchemaSource;
  /** Write the module here (directories are created). */
  output?: string;
  /** Also write the schema as JSON here, for regenerating later without that QEMU. */
  saveSchema?: string;
  /** Give up reading the schema after this long (default 30 s). */
  timeoutMs?: number;
  /** Extra rendering options (QMP reference links, the regenerate hint in the header). */
  render?: Pick<RenderOptions, 'qapiModules' | 'regenerate'>;
}

export interface GeneratedTypes {
  /** The module's text. */
  code: string;
  model: SchemaModel;
  /** `7.2.22`, or `unknown` for a bare schema file without a version. */
  qemuVersion: string;
}

export async function readSchema(source: SchemaSource, timeoutMs = 30_000): Promise<SchemaModel> {
  if (source === null || typeof source !== 'object') {
    throw new InvalidArgumentError('generateTypes: source is required', { hint: 'pass { qemu: PATH }, { socket: PATH }, { file: PATH }, { client } or { model }' });
  }
  if ('model' in source) return source.model;
  if ('client' in source) return fetchSchema(source.client);
  if ('file' in source) return loadSchemaFile(source.file, source.version);
  if ('qemu' in source) return fetchSchemaFromBinary(source.qemu, { timeoutMs });
  if ('socket' in source) {
    const client = await QmpClient.connect({ path: source.socket }, { timeoutMs, connectTimeoutMs: timeoutMs, handshakeTimeoutMs: timeoutMs });
    try {
      return await fetchSchema(client);
    } finally {
      await client.close();
    }
  }
  throw new InvalidArgumentError(`generateTypes: unknown source ${JSON.stringify(Object.keys(source))}`, {
    hint: 'pass { qemu: PATH }, { socket: PATH }, { file: PATH }, { client } or { model }',
  });
}

/** Reads the schema, renders the module, and writes what was asked for. */
export async function generateTypes(options: GenerateTypesOptions): Promise<GeneratedTypes> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('generateTypes: options are required');
  const model = await readSchema(options.source, options.timeoutMs);
  const qemuVersion = model.versionString ?? 'unknown';
  const code = renderModule(model, { ...options.render, qemuVersion, ...(model.version?.package ? { qemuPackage: model.version.package } : {}) });
  if (options.output) {
    await mkdir(dirname(options.output), { recursive: true });
    await writeFile(options.output, code);
  }
  if (options.saveSchema) {
    await mkdir(dirname(options.saveSchema), { recursive: true });
    await writeFile(options.saveSchema, serializeSchema(model));
  }
  return { code, model, qemuVersion };
}
