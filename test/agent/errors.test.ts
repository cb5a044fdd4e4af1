/**
 * How libvirt's agent failures become the agent layer's typed errors. The real agent produces most of
 * these in agent.test.ts and power.test.ts; here every branch, including the ones a healthy guest
 * rarely shows (out of sync, the agent vanishing mid-command), with libvirt's own messages.
 */
import { describe, expect, it } from 'vitest';
import { AgentCommandError, AgentCommandNotSupportedError, AgentTimeoutError, AgentUnavailableError } from '../../src/agent/index.js';
import { agentErrorFromLibvirt } from '../../src/hybrid/guest-agent.js';
import { LibvirtError } from '../../src/libvirt/errors.js';

const lv = (code: number, message: string) => new LibvirtError({ code, domain: 10, message, operation: 'virDomainQemuAgentCommand' });

describe('agentErrorFromLibvirt', () => {
  it('maps unavailability by its cause, keeping libvirt\'s error as the cause', () => {
    const cases: Array<[LibvirtError, string]> = [
      [lv(86, 'Guest agent is not responding: QEMU guest agent is not connected'), 'not-connected'],
      [lv(97, 'Guest agent is not responding: guest agent replied with wrong id to guest-sync'), 'unsynced'],
      [lv(74, 'argument unsupported: QEMU guest agent is not configured'), 'not-configured'],
      [lv(55, 'Requested operation is not valid: domain is not running'), 'not-running'],
      [lv(42, "Domain not found: no domain with matching uuid 'x'"), 'not-running'],
      [lv(1, 'internal error: End of file from agent socket'), 'disconnected'],
    ];
    for (const [err, reason] of cases) {
      const mapped = agentErrorFromLibvirt(err, 'guest-ping', 5000);
      expect(mapped, err.message).toBeInstanceOf(AgentUnavailableError);
      expect((mapped as AgentUnavailableError).reason).toBe(reason);
      expect((mapped as AgentUnavailableError).cause).toBe(err);
    }
  });

  it('"not available for now" is libvirt giving up waiting: AgentTimeoutError', () => {
    const mapped = agentErrorFromLibvirt(lv(86, 'Guest agent is not responding: Guest agent not available for now'), 'guest-ping', 3000);
    expect(mapped).toBeInstanceOf(AgentTimeoutError);
    expect(mapped).toMatchObject({ reason: 'timeout', timeoutMs: 3000, command: 'guest-ping' });
  });

  it("the agent's own error replies: unknown and disabled commands are 'not supported', the rest keep the guest's reason", () => {
    const unknown = agentErrorFromLibvirt(lv(1, "internal error: unable to execute QEMU agent command 'guest-x': The command guest-x has not been found"), 'guest-x', 1000);
    expect(unknown).toBeInstanceOf(AgentCommandNotSupportedError);
    expect(unknown).toMatchObject({ why: 'unknown' });
    const disabled = agentErrorFromLibvirt(lv(1, "internal error: unable to execute QEMU agent command 'guest-get-devices': The command guest-get-devices has been disabled for this instance"), 'guest-get-devices', 1000);
    expect(disabled).toMatchObject({ why: 'disabled' });
    const failed = agentErrorFromLibvirt(lv(1, "internal error: unable to execute QEMU agent command 'guest-file-open': failed to open file '/x' (mode: 'r'): No such file or directory"), 'guest-file-open', 1000);
    expect(failed).toBeInstanceOf(AgentCommandError);
    expect((failed as AgentCommandError).desc).toBe("failed to open file '/x' (mode: 'r'): No such file or directory");
  });

  it('leaves everything else alone (e.g. the connection to libvirtd dropped)', () => {
    const other = lv(38, 'Cannot recv data: Connection reset by peer');
    expect(agentErrorFromLibvirt(other, 'guest-ping', 1000)).toBe(other);
    const plain = new Error('x');
    expect(agentErrorFromLibvirt(plain, 'guest-ping', 1000)).toBe(plain);
  });
});
