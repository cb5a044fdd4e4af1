/**
 * The shape of the generated libvirt call table (src/generated/libvirt/functions.ts): how each argument
 * and return value of a C function crosses between JavaScript and C. The generator writes these; the
 * executor worker (ops.ts) interprets them; the main thread validates arguments with the `tags`.
 */

/**
 * One C argument:
 * - `in`: passed as given (number, bigint, string, null, or an object's pointer);
 * - `out:<c type>`: a scalar out-parameter, returned;
 * - `outStr`: `char **` libvirt allocates (freed here); `outStrs`: `char ***` of `rc` strings (each freed);
 * - `outObjs:<Class>`: `virXPtr **` of `rc` new references, returned as objects;
 * - `tpIn` + `tpCount`: a virTypedParameter array built from a plain object (or entries) and its length;
 * - `tpOut` + `tpOutCount`: a virTypedParameter array libvirt allocates (virTypedParamsFree'd here);
 * - `tpBuf` + `tpBufCount`: a virTypedParameter array the caller allocates (asked for its size first);
 * - `struct:<name>`: a struct the caller allocates and libvirt fills in (plain fields only), returned;
 *   `sizeof:<name>`: that struct's size;
 * - `uuid`: a VIR_UUID_STRING_BUFLEN buffer, returned as a string;
 * - `ids` / `names` + `max`: the legacy list calls (caller-sized array of ids / of strings freed here);
 * - `strsIn` / `uintsIn` + `count`: an input array and its length;
 * - `statsOut`: `virDomainStatsRecordPtr **` (virDomainStatsRecordListFree'd here), returned as records;
 * - `objsIn`: a NULL-terminated array of objects.
 */
export type ArgKind = string;

/**
 * The return value: `int` (< 0 fails), `bool` (`virXIsY`: 1/0), `str` (`char *`, freed), `cstr`
 * (`const char *`, owned by libvirt), `obj:<Class>` (a new reference), `void`, `uint` / `ulong` /
 * `ullong` (fails when libvirt set an error).
 */
export type ReturnKind = string;

export interface FunctionSpec {
  /** Shared object: 0 = libvirt.so.0, 1 = libvirt-qemu.so.0. */
  lib: 0 | 1;
  /** The koffi prototype. */
  proto: string;
  ret: ReturnKind;
  args: ArgKind[];
  /** Names of the outputs, when there are several (the result is then an object with these keys). */
  outs?: string[];
}

/** A returned libvirt object as it crosses from the worker: its pointer and fixed identity. */
export interface ObjectRef {
  ptr: bigint;
  name?: string;
  uuid?: string;
}

/** How a class of libvirt objects is released and identified. */
export interface ClassSpec {
  /** virXFree. */
  free: string;
  /** virXGetName, read with the pointer (a local call, no RPC). */
  name?: string;
  /** virXGetUUIDString, likewise. */
  uuid?: string;
}
