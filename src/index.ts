export * from './qmp/index.js';
export * from './common/errors.js';
export { BoundedQueue, QueueOverflowError } from './common/bounded-queue.js';
export * from './schema/index.js';
export * from './generated/index.js';
export * from './libvirt/index.js';
export * from './hybrid/index.js';
export * from './proxy/index.js';
export * from './migration/index.js';
