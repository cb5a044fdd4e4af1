/**
 * Executor worker: runs one connection's blocking libvirt calls, one at a time, in arrival order (so at
 * most one native RPC is in flight per connection: libvirt 9.0 can leave calls stuck, then crash, when
 * keepalive drops a connection with several in flight).
 *
 * Hand-off: the thread sleeps in Atomics.wait on a shared counter instead of its Node event loop; the main
 * thread posts the request and bumps the counter, which wakes this thread with a futex (cheaper than a
 * MessagePort wake-up through libuv). Replies go back by postMessage.
 *
 * The exit gate lets the main thread wait until this thread is out of koffi before Node tears it down
 * (otherwise: SIGABRT in napi_throw).
 */
import { virErrorDomain, virErrorNumber } from '../generated/libvirt/enums.js';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { OpName } from './ops.js';
import { CTL_SEQ, CTL_STOP, GATE_CLOSING, enterGate, enterNative, importNativeModules, leaveGate, leaveNative, type ExecReply, type ExecRequest } from './protocol.js';

const data = workerData as { gate: SharedArrayBuffer; ctl: SharedArrayBuffer };
const gate = new Int32Array(data.gate);
const ctl = new Int32Array(data.ctl);
const port = parentPort as unknown as MessagePort;
// The modules without koffi load first, outside the exit gate: safe to tear down, and the slow part when
// running from sources. Only loading koffi counts in the gate; once the process exits it is not loaded.
await import('./interpreter.js');
const loaded = await importNativeModules(gate, () => import('./ops.js'));
if (loaded === undefined) process.exit(0);
const { NativeFailure, ops } = loaded;

function handle(req: ExecRequest): void {
  const admitted = enterGate(gate);
  try {
    if (!admitted) return; // the process is exiting: start nothing new
    let reply: ExecReply;
    try {
      const fn = ops[req.op as OpName] as (...args: unknown[]) => unknown;
      enterNative(ctl);
      try {
        reply = { id: req.id, ok: true, value: fn(...req.args) };
      } finally {
        leaveNative(ctl);
      }
    } catch (err) {
      reply =
        err instanceof NativeFailure
          ? { id: req.id, ok: false, error: err.data }
          : { id: req.id, ok: false, error: { code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_NONE, message: String((err as Error)?.message ?? err), operation: req.op } };
    }
    port.postMessage(reply);
  } finally {
    leaveGate(gate);
  }
}

port.postMessage({ id: 0, ok: true, value: 'ready' } satisfies ExecReply);
for (;;) {
  const seq = Atomics.load(ctl, CTL_SEQ);
  let m: { message: unknown } | undefined;
  while ((m = receiveMessageOnPort(port))) handle(m.message as ExecRequest);
  if (Atomics.load(ctl, CTL_STOP) || Atomics.load(gate, GATE_CLOSING)) break;
  // Bounded, so that a missed stop flag can never keep the thread (and thus process exit) waiting long.
  Atomics.wait(ctl, CTL_SEQ, seq, 250);
}
port.close();
