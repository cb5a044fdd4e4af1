/** guest.shutdown()'s agent mode without a daemon: an agent socket closing under guest-shutdown, with and without `wait`. */
import { describe, expect, it } from 'vitest';
import { AgentUnavailableError } from '../../src/agent/index.js';
import { shutdownGuest, type PowerTarget } from '../../src/hybrid/guest-power.js';
import { LibvirtError } from '../../src/libvirt/errors.js';

/** libvirt's error when the agent's socket closes before QEMU's SHUTDOWN event reached it. */
const agentEof = () => new LibvirtError({ code: 1, domain: 10, message: 'internal error: End of file from agent socket', operation: 'virDomainShutdownFlags' });

function target(states: string[], shutdownError: () => unknown): PowerTarget {
  return {
    name: 'stub',
    domain: {
      shutdown: () => Promise.reject(shutdownError()),
      reboot: () => Promise.resolve(),
      state: async () => ({ state: states.length > 1 ? states.shift()! : states[0]! }),
    },
  };
}

describe('guest.shutdown({ mode: "agent" })', () => {
  it('with wait: an agent socket closing under guest-shutdown is the guest going down; the state decides', async () => {
    await expect(shutdownGuest(target(['running', 'running', 'shutoff'], agentEof), { mode: 'agent', wait: true, timeoutMs: 10_000 })).resolves.toBeUndefined();
  });

  it('without wait it is reported (nothing says whether the guest went), and other agent failures always are', async () => {
    const err = await shutdownGuest(target(['running'], agentEof), { mode: 'agent' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentUnavailableError);
    expect((err as AgentUnavailableError).reason).toBe('disconnected');
    const notConnected = () => new LibvirtError({ code: 86, domain: 10, message: 'Guest agent is not responding: QEMU guest agent is not connected' });
    const err2 = await shutdownGuest(target(['running'], notConnected), { mode: 'agent', wait: true, timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(AgentUnavailableError);
    expect((err2 as AgentUnavailableError).reason).toBe('not-connected');
  });
});
