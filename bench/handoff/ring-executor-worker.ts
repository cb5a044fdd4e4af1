/*
 * Benchmark-only: the shared-memory alternative to src/libvirt/executor.ts, kept so that
 * bench/handoff.bench.ts can measure it side by side with the shipped postMessage hand-off (see
 * docs/libvirt-handoff.md for the figures and why the library does not use it). Not part of the library.
 */
/**
 * Executor worker: runs one connection's blocking libvirt calls, one at a time, in arrival order (so at
 * most one native RPC is in flight per connection: libvirt 9.0 can leave calls stuck, then crash, when
 * keepalive drops a connection with several in flight).
 *
 * Hand-off: requests and replies cross in shared memory (exec-ring.ts), not as MessagePort messages.
 * This thread sleeps in Atomics.wait on the request counter (a futex wake, not a libuv wake-up). It does
 * not spin for the next request after a call: on a two-core machine that costs more than the futex wake-up
 * it saves (measured). Each reply bumps the reply counter and notifies it, which resolves the main
 * thread's Atomics.waitAsync. Messages too big for a ring go by a side MessagePort.
 *
 * The exit gate lets the main thread wait until this thread is out of koffi before Node tears it down
 * (otherwise: SIGABRT in napi_throw).
 */
import { virErrorDomain, virErrorNumber } from '../../src/generated/libvirt/enums.js';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { decode, Encoder } from './codec.js';
import { ByteRing, Next } from './byte-ring.js';
import { NativeFailure, ops, type OpName } from '../../src/libvirt/ops.js';
import {
  CTL_READY,
  CTL_REPLY_READ,
  CTL_REPLY_SEQ,
  CTL_REPLY_WRITE,
  CTL_REQ_READ,
  CTL_REQ_WRITE,
  CTL_SEQ,
  CTL_STOP,
  EXEC_CTL_BYTES,
  EXEC_REPLY_RING_BYTES,
  EXEC_REQUEST_RING_BYTES,
} from './layout.js';
import { GATE_ACTIVE, GATE_CLOSING, type ExecReply, type ExecRequest } from '../../src/libvirt/protocol.js';
import type { LibvirtErrorData } from '../../src/libvirt/errors.js';

const data = workerData as { gate: SharedArrayBuffer; shared: SharedArrayBuffer; port: MessagePort };
const gate = new Int32Array(data.gate);
const ctl = new Int32Array(data.shared, 0, EXEC_CTL_BYTES / 4);
const requests = new ByteRing(data.shared, ctl, CTL_REQ_WRITE, CTL_REQ_READ, EXEC_CTL_BYTES, EXEC_REQUEST_RING_BYTES);
const replies = new ByteRing(data.shared, ctl, CTL_REPLY_WRITE, CTL_REPLY_READ, EXEC_CTL_BYTES + EXEC_REQUEST_RING_BYTES, EXEC_REPLY_RING_BYTES);
const port = data.port;
const encoder = new Encoder();

function stopping(): boolean {
  return Atomics.load(ctl, CTL_STOP) !== 0 || Atomics.load(gate, GATE_CLOSING) !== 0;
}

/** Decoded request values, reused: [op, args]. */
const request: unknown[] = [undefined, undefined];

/**
 * Runs one call and writes its reply. Nothing starts once the process is exiting (no reply is due then).
 * The reply is written after the exit gate is left: it no longer touches koffi.
 */
function run(id: number, op: string, args: unknown[]): void {
  let ok = true;
  let value: unknown;
  Atomics.add(gate, GATE_ACTIVE, 1);
  try {
    if (Atomics.load(gate, GATE_CLOSING)) return;
    try {
      value = (ops[op as OpName] as (...a: unknown[]) => unknown)(...args);
    } catch (err) {
      ok = false;
      value =
        err instanceof NativeFailure
          ? err.data
          : ({ code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_NONE, message: String((err as Error)?.message ?? err), operation: op } satisfies LibvirtErrorData);
    }
  } finally {
    // Out of koffi: from here on, the exit hook may let Node tear this thread down.
    Atomics.sub(gate, GATE_ACTIVE, 1);
    Atomics.notify(gate, GATE_ACTIVE);
  }
  send(id, ok, value);
}

function send(id: number, ok: boolean, value: unknown): void {
  let length: number;
  try {
    length = encoder.encode(id, ok, value);
  } catch (err) {
    // A value neither encoding can carry: the caller gets an error instead of waiting for ever.
    ok = false;
    value = { code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_NONE, message: `cannot return the result: ${String((err as Error)?.message ?? err)}` } satisfies LibvirtErrorData;
    length = encoder.encode(id, ok, value);
  }
  const big = length > replies.maxInline;
  if (big) port.postMessage((ok ? { id, ok, value } : { id, ok, error: value }) as ExecReply);
  // The ring is full only while the main thread is busy elsewhere with many replies unread: wait for it.
  while (!(big ? replies.tryWriteOnPort() : replies.tryWrite(encoder.buffer, length))) {
    if (stopping()) return;
    const read = Atomics.load(ctl, CTL_REPLY_READ);
    if (replies.used > 0) Atomics.wait(ctl, CTL_REPLY_READ, read, 50); // notified when the main thread reads
  }
  Atomics.add(ctl, CTL_REPLY_SEQ, 1);
  Atomics.notify(ctl, CTL_REPLY_SEQ);
}

/** Takes every request written so far and runs it, in order. */
function drain(): void {
  for (;;) {
    const next = requests.next();
    if (next === Next.None) return;
    let id: number;
    if (next === Next.OnPort) {
      const req = receiveMessageOnPort(port)!.message as ExecRequest;
      id = req.id;
      request[0] = req.op;
      request[1] = req.args;
    } else id = decode(requests.bytes, requests.start, requests.end, request);
    requests.release();
    const op = request[0] as string;
    const args = request[1] as unknown[];
    request[0] = request[1] = undefined;
    run(id, op, args);
    if (Atomics.load(gate, GATE_CLOSING)) return;
  }
}

Atomics.store(ctl, CTL_READY, 1);
Atomics.notify(ctl, CTL_READY);
for (;;) {
  const seq = Atomics.load(ctl, CTL_SEQ);
  drain();
  if (stopping()) break;
  // Bounded, so that a missed stop flag can never keep the thread (and thus process exit) waiting long.
  Atomics.wait(ctl, CTL_SEQ, seq, 250);
}
port.close();
