/**
 * Entry of the libvirt event worker thread. Its body (event-thread.ts) loads koffi and libvirt, registers
 * the callbacks and starts the loop thread at module evaluation; all of that counts in the exit gate
 * (Node tearing the thread down mid-way aborts the process), and nothing of it runs once the process exits.
 */
import { workerData } from 'node:worker_threads';
import { importNativeModules } from './protocol.js';

const { gate } = workerData as { gate: SharedArrayBuffer };
// The modules without koffi load first, outside the gate (safe to tear down; the slow part from sources).
await import('./interpreter.js');
await importNativeModules(new Int32Array(gate), () => import('./event-thread.js'));
