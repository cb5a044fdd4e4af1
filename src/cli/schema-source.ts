/**
 * Where `schema` and `gen` read a QAPI schema from: a saved file (--file), a QEMU binary started just
 * for that (--qemu), the QEMU behind --socket / --domain, or by default the qemu-system-x86_64 on PATH.
 */
import type { SchemaSource } from '../schema/generate.js';
import type { SchemaModel } from '../schema/model.js';
import type { Session } from './session.js';

export interface SchemaSourceOptions {
  file?: string;
  qemu?: string;
}

export const DEFAULT_QEMU = 'qemu-system-x86_64';

export async function schemaSource(session: Session, opts: SchemaSourceOptions): Promise<SchemaSource> {
  if (opts.file) return { file: opts.file };
  if (opts.qemu) return { qemu: opts.qemu };
  if (session.options.socket || session.options.domain) return { client: await session.qmp({ validate: false }) };
  return { qemu: DEFAULT_QEMU };
}

export async function loadModel(session: Session, opts: SchemaSourceOptions): Promise<SchemaModel> {
  const { readSchema } = await import('../schema/generate.js');
  return readSchema(await schemaSource(session, opts), session.timeoutMs);
}
