/**
 * Hints the CLI prints speak shell: for the errors the command line can meet, built by the library's
 * own code, the hint names libqemu verbs and flags and no JavaScript call, option object or API
 * option name. (The spawned-CLI tests check the same on real guests; this covers every policy rule.)
 */
import { describe, expect, it } from 'vitest';
import { cliHint, cliMessage, JAVASCRIPT_IN_HINT, permissionHint, toShell } from '../../src/cli/hints.js';
import { formatError } from '../../src/cli/output.js';
import { GuestNotFoundError, GuestNotRunningError, MonitorDisconnectedError, MonitorUnavailableError, PolicyError } from '../../src/hybrid/errors.js';
import { permissionDenied } from '../../src/hybrid/stale-socket.js';
import { OwnershipPolicy } from '../../src/hybrid/policy.js';
import { qemuCommandNames } from '../../src/generated/index.js';
import { LibvirtError, LibvirtTimeoutError } from '../../src/libvirt/errors.js';
import { passthroughCapabilities } from '../../src/hybrid/passthrough-transport.js';
import { FdPassingError } from '../../src/qmp/errors.js';

const policy = new OwnershipPolicy();

function refusals(): PolicyError[] {
  const out: PolicyError[] = [];
  const names = [...Object.values(qemuCommandNames), 'x-exit-preconfig'] as string[];
  for (const name of names) {
    try {
      policy.check(name, {});
    } catch (err) {
      if (err instanceof PolicyError) out.push(err);
      else throw err;
    }
  }
  for (const line of ['device_add e1000', 'quit', 'savevm snap1']) {
    try {
      policy.check('human-monitor-command', { 'command-line': line });
    } catch (err) {
      out.push(err as PolicyError);
    }
  }
  return out;
}

describe('CLI hints', () => {
  it('policy refusals: libvirt\'s way once, in the message; the hint is the --allow flag', () => {
    const all = refusals();
    expect(all.length).toBeGreaterThan(40);
    const javascript = all.map((e) => formatError(e, false, { guest: 'web1' })).filter((t) => JAVASCRIPT_IN_HINT.test(t));
    expect(javascript).toEqual([]);
    for (const err of all) {
      expect(cliHint(err)).toBe(`to send it anyway (libvirt may then lose track of the guest's state): --allow ${err.allowName}`);
      expect(cliMessage(err)).toContain(toShell(err.instead, 'web1').split(' ')[0]!);
    }
    const preconfig = all.find((e) => e.command === 'x-exit-preconfig')!;
    expect(cliMessage(preconfig, { guest: 'web1' })).toContain('virDomainCreate (libqemu start web1)');
    const balloon = all.find((e) => e.command === 'balloon')!;
    expect(cliMessage(balloon, { guest: 'web1' })).toContain('libqemu setmem web1 SIZE');
    const eject = all.find((e) => e.command === 'eject')!;
    expect(cliMessage(eject, { guest: 'web1' })).toContain('libqemu update-device web1 FILE');
    const migrate = all.find((e) => e.command === 'migrate')!;
    expect(cliMessage(migrate, { guest: 'web1' })).toContain('libqemu migrate web1');
    // HMP lines are opted in under the QMP command that carries them
    expect(cliHint(all.find((e) => e.command === 'human-monitor-command: quit')!)).toMatch(/--allow human-monitor-command$/);
  });

  it('guest, monitor and libvirt errors name libqemu verbs and flags', () => {
    const cases: [unknown, RegExp][] = [
      [new GuestNotFoundError({ nameOrUuid: 'web9', uri: 'qemu:///system' }), /^list the guests with: libqemu -c qemu:\/\/\/system guests/],
      [new GuestNotRunningError({ guest: 'web1', state: 'shutoff' }), /^start it first: libqemu -c qemu:\/\/\/system start web1$/],
      [new MonitorDisconnectedError({ guest: 'web1', command: 'query-status' }), /libqemu -c qemu:\/\/\/system guests/],
      [permissionDenied('web1', '/run/libqemu/x.qmp'), /run as root or as QEMU's user, or use --via passthrough$/],
      [new MonitorUnavailableError({ guest: 'web1', message: 'the guest has no second QMP monitor in its domain XML', hint: "define it with hv.defineGuest(xml, { qmpSocket: true }), or use guest.qmp({ via: 'passthrough' })", reason: 'no-monitor' }), /--via passthrough$/],
      [new LibvirtTimeoutError('virDomainGetState', 60_000), /raise --timeout SECONDS/],
      [new FdPassingError('passthrough:web1 cannot pass file descriptors', { hint: passthroughCapabilities('qemu+tcp://h/system').fdPassingUnavailable!.hint }), /use the guest's second monitor on the daemon's host \(--via monitor\)/],
      [new LibvirtError({ code: 38, domain: 7, message: "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied", operation: 'virConnectOpen' }), /usermod -aG libvirt/],
    ];
    for (const [err, hint] of cases) {
      const h = cliHint(err, { uri: 'qemu:///system' });
      expect(h, String(h)).toMatch(hint);
      expect(h).not.toMatch(JAVASCRIPT_IN_HINT);
    }
  });

  it('the permission hint for the system daemon names the group and a session daemon', () => {
    expect(permissionHint('qemu:///system')).toMatch(/sudo usermod -aG libvirt \$USER[\s\S]*-c qemu:\/\/\/session/);
    expect(permissionHint('qemu+unix:///session?socket=/x')).not.toMatch(/usermod/);
  });
});
