import type { ExecuteOptions } from './command-map.js';

/** One command as a validator sees it: name, arguments and the caller's per-call options. */
export interface CommandCall<O extends {} = {}> {
  readonly command: string;
  readonly args: Record<string, unknown> | undefined;
  /** The options the caller passed, including what the client adds (`O`, e.g. the facade's `allowUnsafe`). */
  readonly options: ExecuteOptions & O;
}

/**
 * A hook around every command of a client: the extension point for checks (the schema layer's
 * argument validation and reply drift, the facade's ownership policy). A client runs its validators in
 * the order they were added; none of them replaces execute().
 */
export interface CommandValidator<O extends {} = {}> {
  /**
   * Before the command is sent: throw (or reject) to refuse it; nothing is sent then. A synchronous
   * validator keeps calls in the order they were made; an async one delays only its own call.
   */
  validate?(call: CommandCall<O>): void | Promise<void>;
  /**
   * After a successful reply, with its `return` value (e.g. to report schema drift). The caller gets
   * the value once this settles; throwing fails the call.
   */
  checkReply?(call: CommandCall<O>, value: unknown): void | Promise<void>;
  /**
   * Whether `checkReply` needs this call's reply, asked after `validate` (default: every call's). A relay
   * (QmpClient.executeTo) passes the replies no validator needs on as text, without parsing them.
   */
  checksReply?(call: CommandCall<O>): boolean;
}

/**
 * A call's way through the hooks: every `validate` in order, then `send` (at once, in call order, while
 * the hooks are synchronous; `sendLater` after an async one), then every `checkReply` on the value.
 */
export function runThrough<O extends {}>(
  validators: readonly CommandValidator<O>[],
  call: CommandCall<O>,
  send: () => Promise<unknown>,
  sendLater: () => Promise<unknown>,
): Promise<unknown> {
  let sent: Promise<unknown>;
  try {
    const verdict = validateFrom(validators, call, 0);
    sent = verdict ? verdict.then(sendLater) : send();
  } catch (err) {
    return Promise.reject(err);
  }
  if (!validators.some((v) => v.checkReply)) return sent;
  return sent.then((value) => checkReplies(validators, call, value));
}

/** Every validator's checkReply on `value`, in order: the value, or a promise of it when one check is asynchronous. */
export function checkReplies<O extends {}>(validators: readonly CommandValidator<O>[], call: CommandCall<O>, value: unknown): unknown {
  return checkRepliesFrom(validators, call, value, 0);
}

/** Every checkReply in order, waiting only for those that return a promise. */
function checkRepliesFrom<O extends {}>(validators: readonly CommandValidator<O>[], call: CommandCall<O>, value: unknown, from: number): unknown {
  for (let i = from; i < validators.length; i++) {
    const verdict = validators[i]!.checkReply?.(call, value);
    if (verdict && typeof verdict.then === 'function') return verdict.then(() => checkRepliesFrom(validators, call, value, i + 1));
  }
  return value;
}

/** Every validator's `validate` in order: undefined when all passed synchronously, else a promise of the rest. Throws a synchronous refusal. */
export function validateAll<O extends {}>(validators: readonly CommandValidator<O>[], call: CommandCall<O>): void | Promise<void> {
  return validateFrom(validators, call, 0);
}

function validateFrom<O extends {}>(validators: readonly CommandValidator<O>[], call: CommandCall<O>, from: number): void | Promise<void> {
  for (let i = from; i < validators.length; i++) {
    const verdict = validators[i]!.validate?.(call);
    if (verdict && typeof verdict.then === 'function') return verdict.then(() => validateFrom(validators, call, i + 1));
  }
}

/** Whether `v` is a validator: an object with a validate and/or checkReply function. */
export function isValidator(v: unknown): v is CommandValidator<never> {
  if (v === null || typeof v !== 'object') return false;
  const { validate, checkReply, checksReply } = v as Record<string, unknown>;
  return (
    (validate !== undefined || checkReply !== undefined) &&
    (validate === undefined || typeof validate === 'function') &&
    (checkReply === undefined || typeof checkReply === 'function') &&
    (checksReply === undefined || typeof checksReply === 'function')
  );
}
