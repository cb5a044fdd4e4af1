/**
 * The Guest facade's libvirt calls against a real private libvirtd with TCG guests: disk hot-plug seen
 * in QMP query-block, snapshots on a qcow2 disk, stats, memory through a balloon, a vCPU hot-plugged and a
 * CD-ROM medium changed (seen in query-cpus-fast / query-block), and the serial console of the Linux test
 * guest as a Duplex.
 */
import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { LibvirtError } from '../../src/libvirt/index.js';
import { LINUX_GUEST_READY_LINE, linuxTestGuest } from '../../src/testing/linux-guest.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';
import { qcow2Image, scsiDisk, SCSI_CONTROLLER_XML } from '../harness/disks.js';

let daemon: PrivateLibvirtd;
let hv: Hypervisor;
let guest: Guest;

async function queryBlockFiles(g: Guest): Promise<string[]> {
  const qmp = await g.qmp();
  try {
    const devices = (await qmp.execute('query-block')) as { inserted?: { file?: string } }[];
    return devices.map((d) => d.inserted?.file ?? '').filter(Boolean);
  } finally {
    await qmp.close();
  }
}

beforeAll(async () => {
  daemon = await startPrivateLibvirtd({ prefix: 'gfac' });
  hv = await Hypervisor.connect(daemon.uri);
  // a persistent guest: a virtio-scsi controller (its disks come and go without the guest's help), a qcow2 root disk, a balloon
  const devices = [`    ${SCSI_CONTROLLER_XML}`, `    ${scsiDisk(qcow2Image(daemon, 'root.qcow2'), 'sda')}`].join('\n');
  const xml = tinyGuestXml({ name: 'gf1', memoryMiB: 128 }).replace("<memballoon model='none'/>", "<memballoon model='virtio'/>").replace('  </devices>', `${devices}\n  </devices>`);
  guest = await hv.defineGuest(xml);
  await guest.start();
}, 120_000);

afterAll(async () => {
  await guest?.destroy().catch(() => undefined);
  await hv?.close();
  await daemon?.stop();
});

describe('Guest facade on a real libvirtd', () => {
  it('attachDevice/detachDevice plug a qcow2 disk into the running guest (QMP query-block sees it) and its definition', async () => {
    const path = qcow2Image(daemon, 'hot.qcow2');
    const xml = scsiDisk(path, 'sdb');
    expect(await queryBlockFiles(guest)).not.toContain(path);
    await guest.attachDevice(xml); // default: live (running) + config (persistent)
    expect(await queryBlockFiles(guest)).toContain(path);
    expect(await guest.xml()).toContain(path);
    expect(await guest.xml({ inactive: true })).toContain(path);
    const bad = await guest.attachDevice('<disk type="file"><nonsense/></disk>').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(LibvirtError);
    await guest.detachDevice(xml);
    expect(await queryBlockFiles(guest)).not.toContain(path); // libvirt waits for QEMU's DEVICE_DELETED (SCSI needs no guest help)
    expect(await guest.xml({ inactive: true })).not.toContain(path);
  });

  it('attachDevice with { config: true, live: false } changes only the definition', async () => {
    const path = qcow2Image(daemon, 'cold.qcow2');
    await guest.attachDevice(scsiDisk(path, 'sdc'), { live: false, config: true });
    expect(await guest.xml({ inactive: true })).toContain(path);
    expect(await queryBlockFiles(guest)).not.toContain(path);
    await guest.detachDevice(scsiDisk(path, 'sdc'), { config: true, live: false });
    expect(await guest.xml({ inactive: true })).not.toContain(path);
  });

  it('snapshots.create/list/revert/delete on a guest with a qcow2 disk', async () => {
    expect(await guest.snapshots.list()).toEqual([]);
    const name = await guest.snapshots.create('<domainsnapshot><name>fs1</name></domainsnapshot>');
    expect(name).toBe('fs1');
    const listed = await guest.snapshots.list();
    expect(listed).toEqual([{ name: 'fs1', current: true, state: 'running', creationTime: expect.any(Number) }]);
    await guest.suspend();
    expect((await guest.state()).state).toBe('paused');
    await guest.snapshots.revert('fs1');
    expect((await guest.state()).state).toBe('running'); // taken running, so reverted running
    await guest.snapshots.delete('fs1');
    expect(await guest.snapshots.list()).toEqual([]);
    const gone = await guest.snapshots.revert('fs1').catch((e: unknown) => e);
    expect((gone as LibvirtError).codeName).toBe('VIR_ERR_NO_DOMAIN_SNAPSHOT');
    await expect(guest.snapshots.create('<domain/>')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(guest.snapshots.delete('')).rejects.toBeInstanceOf(InvalidArgumentError);
  }, 60_000);

  it('stats() returns libvirt\'s statistics of the running guest as a plain object', async () => {
    const stats = await guest.stats();
    expect(Object.getPrototypeOf(stats)).toBe(Object.prototype);
    expect(stats['state.state']).toBe(1); // VIR_DOMAIN_RUNNING
    expect(stats['vcpu.current']).toBe(1);
    expect(stats['block.count']).toBe(1);
    expect(stats['block.0.name']).toBe('sda');
    expect(stats['balloon.maximum']).toBe(128 * 1024);
  });

  it('setMemory asks the balloon for less memory live, and sets the definition\'s current memory', async () => {
    await guest.setMemory(96 * 1024, { config: true, live: false });
    expect(await guest.xml({ inactive: true })).toMatch(/<currentMemory unit='KiB'>98304<\/currentMemory>/);
    // live: libvirt sends QEMU's balloon command (no OS here to give the memory back, so only the request is visible)
    await guest.setMemory(100 * 1024, { live: true, config: false });
    const qmp = await guest.qmp();
    try {
      expect(await qmp.execute('query-balloon')).toMatchObject({ actual: expect.any(Number) });
    } finally {
      await qmp.close();
    }
    const tooMuch = await guest.setMemory(1024 * 1024, { live: true, config: false }).catch((e: unknown) => e);
    expect(tooMuch).toBeInstanceOf(LibvirtError); // above the maximum: libvirt refuses
    await expect(guest.setMemory(0)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('guest.setVcpus() and guest.updateDevice() on a running persistent guest', () => {
  const cdrom = (source?: string): string =>
    `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>${source ? `<source file='${source}'/>` : ''}<target dev='hdc' bus='ide'/><readonly/></disk>`;
  /** A raw file the guest's QEMU (running as the daemon's user) can open as a CD-ROM medium. */
  const medium = (name: string): string => {
    const path = join(daemon.base, name);
    writeFileSync(path, Buffer.alloc(1 << 20));
    chownSync(path, daemon.uid, daemon.uid);
    return path;
  };
  async function query<T>(g: Guest, command: 'query-cpus-fast' | 'query-block'): Promise<T> {
    const qmp = await g.qmp();
    try {
      return (await qmp.execute(command)) as T;
    } finally {
      await qmp.close();
    }
  }
  const cdMedia = async (g: Guest) => (await query<{ inserted?: { file: string } }[]>(g, 'query-block')).map((d) => d.inserted?.file ?? '(empty)');
  let g: Guest;

  beforeAll(async () => {
    // room for a second vCPU (current 1 of 2) and an IDE CD-ROM with a medium in it
    const xml = tinyGuestXml({ name: 'gfres' })
      .replace('<vcpu>1</vcpu>', "<vcpu placement='static' current='1'>2</vcpu>")
      .replace('  </devices>', `    ${cdrom(medium('one.iso'))}\n  </devices>`);
    g = await hv.defineGuest(xml);
    await g.start();
  }, 120_000);
  afterAll(async () => {
    await g?.destroy().catch(() => undefined);
    await g?.undefine().catch(() => undefined);
  });

  it('setVcpus(2, { live }) hot-plugs a vCPU that QEMU lists; { config } changes the definition; beyond the maximum libvirt refuses', async () => {
    expect(await query<unknown[]>(g, 'query-cpus-fast')).toHaveLength(1);
    await g.setVcpus(2, { live: true, config: false });
    expect(await query<{ 'cpu-index': number }[]>(g, 'query-cpus-fast')).toEqual([expect.objectContaining({ 'cpu-index': 0 }), expect.objectContaining({ 'cpu-index': 1 })]);
    expect(await g.xml({ inactive: true })).toContain("<vcpu placement='static' current='1'>2</vcpu>");
    await g.setVcpus(2, { live: false, config: true });
    expect(await g.xml({ inactive: true })).toContain("<vcpu placement='static'>2</vcpu>");
    const tooMany = await g.setVcpus(3).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(LibvirtError);
    await expect(g.setVcpus(0)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('updateDevice changes the CD-ROM medium QEMU has (query-block) and the definition; { force } ejects it live only', async () => {
    const one = join(daemon.base, 'one.iso');
    expect(await cdMedia(g)).toEqual([one]);
    const two = medium('two.iso');
    // The guest sits in SeaBIOS, which keeps retrying to boot from this CD-ROM and can close the tray that
    // libvirt has just opened for the change (QEMU then refuses blockdev-remove-medium: "Tray … is not
    // open"; seen on a loaded host). Paused, the guest is still live but its firmware cannot race libvirt.
    await g.suspend();
    try {
      await g.updateDevice(cdrom(two)); // default: live (running) + config (persistent)
      expect(await cdMedia(g)).toEqual([two]);
      expect(await g.xml({ inactive: true })).toContain(two);
      await g.updateDevice(cdrom(), { live: true, config: false, force: true });
      expect(await cdMedia(g)).toEqual(['(empty)']);
      expect(await g.xml({ inactive: true })).toContain(two); // the definition keeps its medium
    } finally {
      await g.resume();
    }
    const noSuch = await g.updateDevice("<disk type='file' device='cdrom'><target dev='hdd' bus='ide'/></disk>").catch((e: unknown) => e);
    expect(noSuch).toBeInstanceOf(LibvirtError);
  });
});

describe('guest.screenshot()', () => {
  it('reads the display of a guest with a VGA card as an image of the type libvirt names', async () => {
    const xml = tinyGuestXml({ name: 'gfshot' }).replace("<video><model type='none'/></video>", "<video><model type='vga'/></video>");
    const shot = await hv.createGuest(xml);
    try {
      const image = await shot.screenshot();
      const chunks: Buffer[] = [];
      for await (const c of image) chunks.push(c as Buffer);
      const data = Buffer.concat(chunks);
      // libvirt 9 asks QEMU for PNG when QEMU can write it, else PPM
      expect(['image/png', 'image/x-portable-pixmap']).toContain(image.mimeType);
      if (image.mimeType === 'image/png') {
        expect(data.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
        expect(data.subarray(12, 16).toString('latin1')).toBe('IHDR');
        expect(data.readUInt32BE(16)).toBeGreaterThan(0); // width
        expect(data.subarray(-8, -4).toString('latin1')).toBe('IEND'); // the whole image arrived
      } else {
        const header = /^P6\n(\d+) (\d+)\n255\n/.exec(data.subarray(0, 32).toString('latin1'));
        expect(header).not.toBeNull();
        expect(data.length).toBe(header![0].length + Number(header![1]) * Number(header![2]) * 3);
      }
      await expect(shot.screenshot({ screen: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await shot.destroy().catch(() => undefined);
    }
  });
});

describe('guest.console() on the Linux test guest', () => {
  it('reads the guest\'s boot output and ready line from its serial console, and lets go cleanly', async () => {
    const lg = await linuxTestGuest({ name: 'gfcon', dir: daemon.base, owner: daemon });
    // the same guest with its serial port on a pty (a console libvirt can hand out) instead of a file
    const xml = lg.xml.replace(/ {4}<serial type='file'>.*<\/serial>/, "    <serial type='pty'><target port='0'/></serial>\n    <console type='pty'><target type='serial' port='0'/></console>");
    expect(xml).toContain("<serial type='pty'>");
    const con = await hv.createGuest(xml, { paused: true });
    try {
      const duplex = await con.console(); // opened before the CPUs run, so no output is missed
      let text = '';
      const ready = new Promise<void>((resolve, reject) => {
        duplex.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          if (text.includes(LINUX_GUEST_READY_LINE)) resolve();
        });
        duplex.on('error', reject);
        duplex.on('end', () => reject(new Error(`console ended before the ready line; got: ${text.slice(-500)}`)));
      });
      await con.resume();
      await ready;
      // a second client is refused while we hold the console (VIR_DOMAIN_CONSOLE_SAFE)
      const second = await con.console().then((d) => (d.destroy(), undefined), (e: unknown) => e);
      expect(second).toBeInstanceOf(LibvirtError);
      // typing into it reaches libvirt (the guest has no shell on ttyS0, so nothing is asserted about a reply)
      await new Promise<void>((resolve, reject) => duplex.write('\n', (err) => (err ? reject(err) : resolve())));
      duplex.destroy(); // hanging up is quiet: no error event
      await new Promise((r) => duplex.once('close', r));
      expect((await con.state()).state).toBe('running');
      // once let go, the console can be opened again
      const again = await con.console();
      again.destroy();
      await expect(con.console({ device: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await con.destroy().catch(() => undefined);
    }
  }, 180_000);
});
