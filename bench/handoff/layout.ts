/**
 * Shared-memory layout of the ring executor (the measured alternative to the shipped postMessage
 * hand-off): a control block of Int32 slots, then the request ring, then the reply ring. SEQ and STOP
 * sit where the library's exit hook expects them (src/libvirt/protocol.ts).
 */
export { CTL_SEQ, CTL_STOP } from '../../src/libvirt/protocol.js';
export const CTL_REPLY_SEQ = 2;
export const CTL_REQ_WRITE = 3;
export const CTL_REQ_READ = 4;
export const CTL_REPLY_WRITE = 5;
export const CTL_REPLY_READ = 6;
export const CTL_READY = 7;
export const EXEC_CTL_BYTES = 64;
export const EXEC_REQUEST_RING_BYTES = 1 << 18;
export const EXEC_REPLY_RING_BYTES = 1 << 18;
