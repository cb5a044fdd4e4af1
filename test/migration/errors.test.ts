import { describe, expect, it } from 'vitest';
import { LibqemuError } from '../../src/common/errors.js';
import { classifyMigrationFailure, MigrationError } from '../../src/migration/errors.js';

// Messages as libvirt 9.0 printed them on this machine type, captured from real failed migrations and calls.
const cases: [string, { code?: number; domain?: number; message: string }, string][] = [
  ['destination daemon gone', { code: 38, domain: 7, message: "Failed to connect socket to '/tmp/mB/run/libvirt/libvirt-sock': No such file or directory" }, 'destination-unreachable'],
  ['p2p connect failure', { code: 9, domain: 10, message: "operation failed: Failed to connect to remote libvirt URI qemu+unix:///session?socket=/x: Failed to connect socket to '/x': Connection refused" }, 'destination-unreachable'],
  ['port busy with listen address', { code: 1, domain: 10, message: "internal error: unable to execute QEMU command 'migrate-incoming': Failed to find an available port: Address already in use" }, 'port-busy'],
  ['direct', { code: 74, domain: 10, message: 'argument unsupported: direct migration is not supported by the source host' }, 'unsupported'],
  ['postcopy unprivileged', { code: 1, domain: 10, message: "internal error: unable to execute QEMU command 'migrate-set-capabilities': Postcopy is not supported" }, 'unsupported'],
  ['same host', { code: 1, domain: 10, message: 'internal error: Attempt to migrate guest to the same host 11111111-2222-4333-8444-555555555555' }, 'same-host'],
  ['aborted', { code: 78, domain: 10, message: "operation aborted: job 'migration out' canceled by client" }, 'aborted'],
  ['stream reset', { code: 9, domain: 10, message: "operation failed: job 'migration out' failed: Unable to write to socket: Connection reset by peer" }, 'failed'],
];

describe('classifyMigrationFailure', () => {
  it.each(cases)('%s → %s', (_name, err, reason) => {
    const e = classifyMigrationFailure(err, { destination: 'qemu+unix:///session?socket=/x' });
    expect(e).toBeInstanceOf(MigrationError);
    expect(e).toBeInstanceOf(LibqemuError);
    expect(e.reason).toBe(reason);
    expect(e.message).toContain(err.message);
    expect(e.message).toContain('qemu+unix:///session?socket=/x');
    expect(e.hint).toBeTruthy();
    expect(e.cause).toBe(err);
  });
});
