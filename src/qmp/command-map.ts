/**
 * The shapes a typed QmpClient is parameterised with. The schema layer generates concrete maps
 * (QemuCommands, QemuEvents); the qmp layer only needs their shape.
 */
export type CommandMap = Record<string, { args: object | undefined; returns: unknown }>;
/** Event name → its `data` payload type. */
export type EventMap = Record<string, unknown>;

/** QMP's event wire shape. */
export interface QmpEvent<N extends string = string, D = QmpEventData> {
  event: N;
  data: D;
  timestamp: { seconds: number; microseconds: number };
}

/** `data` of an event the map does not know: an object, or absent. */
export type QmpEventData = Record<string, unknown> | undefined;

/** Per-call options of execute(). */
export interface ExecuteOptions {
  /** Abort the wait (the command may still run in QEMU; its late reply is dropped). */
  signal?: AbortSignal;
  /** Override the client's default per-command timeout; 0 = none. */
  timeoutMs?: number;
  /** Send with `exec-oob` (needs oob negotiated and a command with allow-oob). */
  oob?: boolean;
  /**
   * File descriptors to pass with the command (QEMU's `getfd`, `add-fd`), sent with its bytes by
   * SCM_RIGHTS. Needs a transport whose capabilities say `fdPassing`; the caller keeps its own copies.
   */
  fds?: number[];
  /**
   * Commands with different keys may run at the same time on a transport that can (libvirt passthrough,
   * where each command is its own libvirt call); commands with the same key, or without one, keep their
   * order. A proxy gives each of its clients its own key. Any object (compared by identity).
   */
  orderingKey?: object;
}

/**
 * The command names a client accepts in execute(): the map's names when it has any (so a typo does not
 * compile and editors complete the names), any string for an untyped client.
 */
export type CommandName<C> = string extends keyof C ? string : [keyof C] extends [never] ? string : keyof C & string;

/** The event names a client accepts in waitForEvent()/events({ names }): the same rule as CommandName. */
export type EventName<E> = string extends keyof E ? string : [keyof E] extends [never] ? string : keyof E & string;

/** Arguments of command K: typed when the map knows it, loose otherwise. */
export type CommandArgs<C, K extends string> = K extends keyof C
  ? C[K] extends { args: infer A }
    ? A
    : never
  : Record<string, unknown>;

/** Return value of command K: typed when the map knows it, unknown otherwise. */
export type CommandReturn<C, K extends string> = K extends keyof C
  ? C[K] extends { returns: infer R }
    ? R
    : unknown
  : unknown;

/**
 * The parameters after the command name: `args` is required when the map's args type has required
 * members, optional when all are optional or the command takes none, and loose for unknown commands.
 * `O` is what the client adds to the per-call options (e.g. the facade's `allowUnsafe`).
 */
export type ExecuteRest<C, K extends string, O extends {} = {}> = K extends keyof C
  ? C[K] extends { args: infer A }
    ? [A] extends [undefined]
      ? [args?: undefined | Record<string, never>, options?: ExecuteOptions & O]
      : {} extends A
        ? [args?: A, options?: ExecuteOptions & O]
        : [args: A, options?: ExecuteOptions & O]
    : never
  : [args?: Record<string, unknown>, options?: ExecuteOptions & O];

/** The event object delivered for name N: typed when the map knows it. */
export type EventOf<E, N extends string> = N extends keyof E ? QmpEvent<N, E[N]> : QmpEvent<N, QmpEventData>;

/** Any event: a union of the known ones plus the loose shape for names the map does not know. */
export type AnyEvent<E> = { [K in keyof E & string]: QmpEvent<K, E[K]> }[keyof E & string] | QmpEvent<string, QmpEventData>;
