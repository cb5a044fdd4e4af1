/**
 * Executor worker: runs one connection's blocking libvirt calls, one at a time, in arrival order (so at
 * most one native RPC is in flight per connection: libvirt 9.0 can leave calls stuck, then crash, when
 * keepalive drops a connection with several in flight). The exit gate lets the main thread wait until
 * this thread is out of koffi before Node tears it down (otherwise: SIGABRT in napi_throw).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NativeFailure, ops, type OpName } from './ops.js';
import { GATE_ACTIVE, GATE_CLOSING, type ExecReply, type ExecRequest } from './protocol.js';

const gate = new Int32Array((workerData as { gate: SharedArrayBuffer }).gate);
const port = parentPort!;

port.on('message', (req: ExecRequest) => {
  Atomics.add(gate, GATE_ACTIVE, 1);
  try {
    if (Atomics.load(gate, GATE_CLOSING)) return; // the process is exiting: start nothing new
    let reply: ExecReply;
    try {
      const fn = ops[req.op as OpName] as (...args: unknown[]) => unknown;
      reply = { id: req.id, ok: true, value: fn(...req.args) };
    } catch (err) {
      reply = err instanceof NativeFailure
        ? { id: req.id, ok: false, error: err.data }
        : { id: req.id, ok: false, error: { code: 1, domain: 0, message: String((err as Error)?.message ?? err), operation: req.op } };
    }
    port.postMessage(reply);
  } finally {
    Atomics.sub(gate, GATE_ACTIVE, 1);
    Atomics.notify(gate, GATE_ACTIVE);
  }
});
port.postMessage({ id: 0, ok: true, value: 'ready' } satisfies ExecReply);
