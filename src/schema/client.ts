/**
 * SchemaClient: a QmpClient that knows the schema of the QEMU it is actually connected to (fetched on
 * first need, shared across connections to the same build) and plugs two validators into it: every
 * command is checked against that schema before it is sent, and (on request) every reply after.
 * QemuClient is the SchemaClient typed with the module generated from QEMU 7.2; subclass SchemaClient
 * with your own generated maps for another QEMU. Neither overrides execute().
 */
import { QmpClient } from '../qmp/client.js';
import type { CommandMap, EventMap } from '../qmp/command-map.js';
import type { QmpClientOptions, QmpConnectOptions, QmpTarget } from '../qmp/options.js';
import type { QmpTransport } from '../qmp/transport.js';
import type { CommandValidator } from '../qmp/validator.js';
import { InvalidArgumentError } from '../common/errors.js';
import { QmpCommandError } from '../qmp/errors.js';
import { SchemaError } from './errors.js';
import { qemuCommandNames, type QemuCommandNames, type QemuCommands, type QemuEvents } from '../generated/index.js';
import { SchemaCache, defaultSchemaCache } from './cache.js';
import { fetchSchema, fetchVersion, type CommandRunner } from './fetch.js';
import type { QemuVersionInfo, SchemaModel } from './model.js';
import { checkReply, validateCommand, type Drift, type FeatureUse } from './validate.js';
import { commandWrappers, type CommandWrappers } from './wrappers.js';

/** A deprecated or unstable command, member or value was used (reported once per client and path). */
export interface SchemaWarning extends FeatureUse {
  readonly message: string;
}

export interface QemuClientOptions<O extends {} = {}> extends QmpClientOptions<O> {
  /**
   * Check every command against the connected QEMU's schema before sending it (default true).
   * The first command then waits for the schema (one `query-qmp-schema`, unless cached).
   */
  validate?: boolean;
  /** Deprecated/unstable use, once per path (default: the logger's warn, else process.emitWarning). */
  onSchemaWarning?: (warning: SchemaWarning) => void;
  /**
   * Compare replies with the schema and report differences (unknown keys, new enum values, …).
   * Replies are never failed or altered. Off by default: it walks every reply.
   */
  onReplyDrift?: (command: string, drift: readonly Drift[]) => void;
  /** The QEMU binary, when known: makes the cache key exact. */
  binary?: string;
  /** Where schemas are shared between connections (default: one per process); false = never share. */
  schemaCache?: SchemaCache | false;
}

export interface QemuConnectOptions extends QemuClientOptions, QmpConnectOptions {}

/** Commands that exist in every QEMU with introspection: the loader itself must not wait for the schema. */
const BOOTSTRAP = new Set(['query-qmp-schema', 'query-version', 'qmp_capabilities']);

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- {} = "no typed commands"
export class SchemaClient<C extends CommandMap = {}, E extends EventMap = {}, O extends {} = {}> extends QmpClient<C, E, O> {
  static override connect<This extends new (transport: QmpTransport, options?: QmpClientOptions) => object>(
    this: This,
    target: QmpTarget,
    options: QemuConnectOptions = {},
  ): Promise<InstanceType<This>> {
    return (QmpClient.connect as (this: unknown, t: QmpTarget, o: QemuConnectOptions) => Promise<InstanceType<This>>).call(this, target, options);
  }

  private readonly schemaOptions: QemuClientOptions<O>;
  private model: SchemaModel | undefined;
  private loading: Promise<SchemaModel> | undefined;
  /** Set when the peer has no query-qmp-schema: validation is skipped, schema() rejects with it. */
  private unavailable: SchemaError | undefined;
  private readonly warned = new Set<string>();

  constructor(transport: QmpTransport, options: QemuClientOptions<O> = {}) {
    super(transport, options);
    if (options.validate !== undefined && typeof options.validate !== 'boolean') {
      throw new InvalidArgumentError(`validate must be true or false, got ${String(options.validate)}`);
    }
    if (options.schemaCache !== undefined && options.schemaCache !== false && !(options.schemaCache instanceof SchemaCache)) {
      throw new InvalidArgumentError('schemaCache must be a SchemaCache or false');
    }
    this.schemaOptions = options;
    // After the validators given in options (e.g. the facade's policy): a refused command needs no schema.
    if (options.validate !== false) this.use(this.schemaValidator());
    if (options.onReplyDrift) this.use(this.driftReporter(options.onReplyDrift));
  }

  /**
   * The connected QEMU's schema model: fetched on first need (once per connection), shared with other
   * connections to the same QEMU build through the schema cache.
   */
  schema(): Promise<SchemaModel> {
    if (this.model) return Promise.resolve(this.model);
    if (this.unavailable) return Promise.reject(this.unavailable);
    this.loading ??= this.loadSchema().then(
      (m) => (this.model = m),
      (err: unknown) => {
        this.loading = undefined; // a later call may retry (e.g. after a timeout)
        if (err instanceof QmpCommandError && err.errorClass === 'CommandNotFound') {
          // QEMU before 2.5 (or a peer that is not QEMU): there is no schema to check against.
          this.unavailable = new SchemaError('', `${this.transport.description} does not offer query-qmp-schema`, {
            cause: err,
            hint: 'QEMU 2.5 or newer is needed for supports() and argument validation; commands are sent unchecked',
          });
          throw this.unavailable;
        }
        throw err;
      },
    );
    return this.loading;
  }

  /** The schema if it has been loaded already (no I/O). */
  get loadedSchema(): SchemaModel | undefined {
    return this.model;
  }

  /** Whether the connected QEMU has `command` (and, if given, that argument member). */
  async supports(command: string, member?: string): Promise<boolean> {
    checkName('supports', command, member);
    return (await this.schema()).supports(command, member);
  }

  /** Whether the connected QEMU can emit event `name` (and, if given, with that data member). */
  async supportsEvent(name: string, member?: string): Promise<boolean> {
    checkName('supportsEvent', name, member);
    return (await this.schema()).supportsEvent(name, member);
  }

  private async loadSchema(): Promise<SchemaModel> {
    // Through the client's own validators (the schema validator lets these bootstrap commands pass).
    const self: CommandRunner = { execute: (command) => this.executeUnchecked(command) };
    const cache = this.schemaOptions.schemaCache === undefined ? defaultSchemaCache : this.schemaOptions.schemaCache;
    if (cache === false) return fetchSchema(self);
    // A synthesised greeting (libvirt passthrough) may not carry the real version: ask QEMU then.
    let version: QemuVersionInfo = this.greeting.version;
    if (version.qemu.major === 0) version = await fetchVersion(self);
    return cache.get(SchemaCache.key(version, this.schemaOptions.binary), () => fetchSchema(self));
  }

  private schemaValidator(): CommandValidator {
    const check = (model: SchemaModel, command: string, args: unknown) => this.reportUses(validateCommand(model, command, args));
    return {
      validate: ({ command, args }) => {
        if (this.model) return check(this.model, command, args);
        if (BOOTSTRAP.has(command) || this.unavailable) return;
        return this.schema().then(
          (m) => check(m, command, args),
          (err: unknown) => {
            // Validation needs a schema; without one the command goes out unchecked.
            if (err !== this.unavailable) throw err;
          },
        );
      },
    };
  }

  /** Compares replies with the schema; differences are reported, replies never failed or altered. */
  private driftReporter(report: NonNullable<QemuClientOptions['onReplyDrift']>): CommandValidator {
    return {
      checkReply: async ({ command }, value) => {
        // The schema loader's own commands must not wait for the schema they are loading.
        if (BOOTSTRAP.has(command)) return;
        const drift = checkReply(await this.schema(), command, value);
        if (drift.length === 0) return;
        try {
          report(command, drift);
        } catch {
          // a reporting hook must not fail the call
        }
      },
    };
  }

  private reportUses(uses: readonly FeatureUse[]): void {
    for (const use of uses) {
      const key = `${use.feature}:${use.path}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      const message =
        use.feature === 'deprecated'
          ? `QMP: ${use.path} is deprecated in this QEMU and may be removed`
          : `QMP: ${use.path} is unstable in this QEMU and may change without notice`;
      const warning: SchemaWarning = { ...use, message };
      const sink = this.schemaOptions.onSchemaWarning;
      try {
        if (sink) sink(warning);
        else if (this.schemaOptions.logger?.warn) this.schemaOptions.logger.warn(message, { path: use.path, feature: use.feature });
        else process.emitWarning(message, { code: use.feature === 'deprecated' ? 'LIBQEMU_QMP_DEPRECATED' : 'LIBQEMU_QMP_UNSTABLE' });
      } catch {
        // a reporting hook must not fail the call
      }
    }
  }
}

/** The client for QEMU 7.2's generated types (and, at run time, whatever QEMU it is connected to). */
export class QemuClient<O extends {} = {}> extends SchemaClient<QemuCommands, QemuEvents, O> {
  private wrappers: CommandWrappers<QemuCommands, QemuCommandNames, O> | undefined;

  /** camelCase wrappers: `client.commands.setLink({ name: 'net0', up: false })`. */
  get commands(): CommandWrappers<QemuCommands, QemuCommandNames, O> {
    return (this.wrappers ??= commandWrappers<QemuCommands, QemuCommandNames, O>(this, qemuCommandNames));
  }
}

function checkName(what: string, name: unknown, member: unknown): void {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError(`${what}: name must be a non-empty string`);
  if (member !== undefined && (typeof member !== 'string' || member === '')) {
    throw new InvalidArgumentError(`${what}: member must be a non-empty string when given`);
  }
}
