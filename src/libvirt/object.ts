/**
 * What every libvirt object (Domain, Network, StoragePool, …) stands on: its native handle and the narrow
 * context it runs calls through. Objects depend on this interface, not on Connection, so the generated
 * classes, the hand-written cores and the connection import one another in one direction only.
 */
import type { CallOptions } from './executor.js';
import type { ExecOps, OpName } from './ops.js';
import type { ObjectRef } from './spec.js';
import type { TypedParam } from './typed-params.js';

/** The connection as its objects see it. */
export interface LibvirtContext {
  /**
   * Runs one generated binding (by its C name) on the connection's worker thread. `tags` describe the
   * JS-visible arguments after the object itself, for validation on this thread (src/libvirt/call-args.ts).
   */
  call(c: string, tags: string, args: unknown[], options?: CallOptions): Promise<unknown>;
  /** @internal Runs one hand-written op from src/libvirt/ops.ts on the connection's worker thread. */
  exec<K extends OpName>(op: K, args: Parameters<ExecOps[K]>, options?: CallOptions): Promise<ReturnType<ExecOps[K]>>;
  /** Wraps a reference the worker handed over in an object of `cls`, released when unreferenced or on close(). */
  adopt(cls: string, ref: ObjectRef): LibvirtObject;
  /** The Connection itself (what virXGetConnect returns). */
  readonly connection: unknown;
}

/** A libvirt object held by one connection. */
export class LibvirtObject {
  /** @internal the connection's call interface */
  readonly context: LibvirtContext;
  /** The native handle (a branded C pointer as a bigint). */
  readonly pointer: bigint;
  /** The object's name, read with the handle (undefined for types without one, e.g. streams). */
  readonly name: string | undefined;
  /** The object's UUID, read with the handle (undefined for types without one). */
  readonly uuid: string | undefined;

  /** @internal objects come from their connection's methods (lookups, lists, creates). */
  constructor(context: LibvirtContext, ref: ObjectRef) {
    this.context = context;
    this.pointer = ref.ptr;
    this.name = ref.name;
    this.uuid = ref.uuid;
  }
}

/** Typed parameters given to a call: a plain object (field types from libvirt's docs) or explicit entries. */
export type TypedParamsInput = Readonly<Record<string, number | bigint | boolean | string | readonly string[]>> | readonly TypedParam[];

/** Typed parameters libvirt returned, as a plain object. */
export type TypedParamsObject = Record<string, number | bigint | boolean | string>;

/** One record of virConnectGetAllDomainStats / virDomainListGetStats. */
export interface DomainStatsRecord<D> {
  domain: D;
  stats: TypedParamsObject;
}
