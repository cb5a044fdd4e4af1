import { describe, expect, it } from 'vitest';
import { uriPassesFds } from '../../src/domain/uri.js';
import { passthroughCapabilities } from '../../src/hybrid/passthrough-transport.js';

describe('which libvirt URIs can carry file descriptors', () => {
  it.each([
    ['qemu:///system', true],
    ['qemu:///session', true],
    ['qemu+unix:///session?socket=/tmp/x/libvirt-sock', true],
    ['qemu:///embed?root=/tmp/r', true],
    ['qemu+tcp://127.0.0.1:16509/session', false],
    ['qemu+tls://host/system', false],
    ['qemu+ssh://root@host/system', false],
    ['qemu://host/system', false],
    ['test:///default', false],
    ['not a uri', false],
  ])('%s → %s', (uri, expected) => {
    expect(uriPassesFds(uri)).toBe(expected);
  });

  it("the passthrough route's capabilities follow, and say why not without showing the URI's query", () => {
    expect(passthroughCapabilities('qemu:///system')).toMatchObject({ fdPassing: true, maxFds: 1 });
    const tcp = passthroughCapabilities('qemu+tls://host:16514/system?pkipath=/secret/dir');
    expect(tcp.fdPassing).toBe(false);
    expect(tcp.fdPassingUnavailable?.reason).toContain('qemu+tls://host:16514/…');
    expect(tcp.fdPassingUnavailable?.reason).not.toContain('secret');
    expect(tcp.fdPassingUnavailable?.hint).toContain("via: 'monitor'");
  });
});
