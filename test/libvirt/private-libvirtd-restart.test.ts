/** The testing kit's restart(), kill() and TCP listener: what users need to test their own recovery and remote URIs. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, LibvirtError } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';
import { InvalidArgumentError } from '../../src/common/errors.js';

describe('a private libvirtd restarted under running guests', () => {
  let daemon: PrivateLibvirtd;
  beforeAll(async () => {
    daemon = await startPrivateLibvirtd({ prefix: 'lvrst', tcp: true });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('listens on 127.0.0.1 over TCP: the same daemon answers on both URIs', async () => {
    expect(daemon.tcpUri).toMatch(/^qemu\+tcp:\/\/127\.0\.0\.1:\d+\/session$/);
    const local = await Connection.open(daemon.uri);
    const remote = await Connection.open(daemon.tcpUri!);
    try {
      const dom = await local.createXML(tinyGuestXml({ name: 'both' }));
      const seen = await remote.lookupDomain('both');
      expect(seen.uuid).toBe(dom.uuid);
      await dom.destroy();
    } finally {
      await remote.close();
      await local.close();
    }
  });

  it('restart() keeps the guests running, gives libvirtd a new pid, and closes old connections', async () => {
    const conn = await Connection.open(daemon.uri);
    const dom = await conn.createXML(tinyGuestXml({ name: 'survivor' }));
    const before = daemon.pid;
    await daemon.restart();
    expect(daemon.pid).not.toBe(before);
    // The old connection saw the daemon go.
    await expect(dom.state()).rejects.toBeInstanceOf(LibvirtError);
    await conn.close();
    for (const uri of [daemon.uri, daemon.tcpUri!]) {
      const again = await Connection.open(uri);
      try {
        expect((await (await again.lookupDomain('survivor')).state()).state).toBe('running');
      } finally {
        await again.close();
      }
    }
  });

  it('kill() leaves no daemon to connect to, and restart() brings it back', async () => {
    await daemon.kill();
    await expect(Connection.open(daemon.uri)).rejects.toBeInstanceOf(LibvirtError);
    await daemon.restart();
    const conn = await Connection.open(daemon.uri);
    try {
      expect((await (await conn.lookupDomain('survivor')).state()).state).toBe('running');
    } finally {
      await conn.close();
    }
  });
});

it('startPrivateLibvirtd refuses a bad tcp option with a typed error', async () => {
  await expect(startPrivateLibvirtd({ tcp: { port: 80 } })).rejects.toBeInstanceOf(InvalidArgumentError);
  await expect(startPrivateLibvirtd({ tcp: 'yes' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
});
