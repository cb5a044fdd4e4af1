export { SchemaError } from './errors.js';
export {
  SchemaModel,
  type RawSchemaInfo,
  type RawMember,
  type RawJsonType,
  type QemuVersionInfo,
  type Features,
  type SchemaType,
  type BuiltinType,
  type EnumType,
  type ArrayType,
  type ObjectType,
  type AlternateType,
  type Member,
  type CommandInfo,
  type EventInfo,
} from './model.js';
export { validateCommand, checkReply, checkEvent, type FeatureUse, type Drift } from './validate.js';
export { SchemaCache, defaultSchemaCache } from './cache.js';
export {
  fetchSchema,
  fetchVersion,
  fetchSchemaFromBinary,
  loadSchemaFile,
  serializeSchema,
  type CommandRunner,
  type SavedSchema,
  type BinaryOptions,
} from './fetch.js';
export { generateTypes, readSchema, type GenerateTypesOptions, type GeneratedTypes, type SchemaSource } from './generate.js';
export { commandWrappers, type CommandWrappers, type CommandNameTable } from './wrappers.js';
export { QemuClient, SchemaClient, type QemuClientOptions, type QemuConnectOptions, type SchemaWarning } from './client.js';
