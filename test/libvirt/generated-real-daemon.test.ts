/**
 * Generated bindings against a real private libvirtd with tiny TCG guests: disk hot-plug seen by QEMU,
 * internal snapshots on a qcow2 disk, domain statistics, a storage pool, a network, a secret, and the
 * session daemon's refusal of nwfilters.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { VIR_CONNECT_LIST_SECRETS_EPHEMERAL, VIR_SECRET_USAGE_TYPE_NONE, VIR_DOMAIN_AFFECT_LIVE, VIR_DOMAIN_STATS_BLOCK, VIR_DOMAIN_STATS_STATE, VIR_DOMAIN_STATS_VCPU, VIR_STREAM_NONBLOCK } from '../../src/generated/libvirt/constants.js';
import { Connection, LibvirtError, type Domain } from '../../src/libvirt/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/private-libvirtd.js';
import { qcow2Image, scsiDisk, SCSI_CONTROLLER_XML } from '../harness/disks.js';

let daemon: PrivateLibvirtd;
let conn: Connection;
let guest: Domain;

/** tinyGuestXml with a virtio-scsi controller (its disks come and go without the guest's help) and disks. */
function guestXml(name: string, disks: string[]): string {
  const extra = [`    ${SCSI_CONTROLLER_XML}`, ...disks].join('\n');
  return tinyGuestXml({ name }).replace('  </devices>', `${extra}\n  </devices>`);
}

/** Every regular file under `dir` whose bytes contain one of `needles`. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) hits.push(...filesContaining(path, needles));
    else if (entry.isFile() && statSync(path).size < 64 << 20) {
      const bytes = readFileSync(path);
      if (needles.some((n) => bytes.includes(n))) hits.push(path);
    }
  }
  return hits;
}

async function queryBlockFiles(dom: Domain): Promise<string[]> {
  const reply = await dom.qemuMonitorCommand({ execute: 'query-block' });
  const devices = reply.return as { inserted?: { file?: string } }[];
  return devices.map((d) => d.inserted?.file ?? '').filter(Boolean);
}

beforeAll(async () => {
  daemon = await startPrivateLibvirtd({ prefix: 'lvgn' });
  conn = await Connection.open(daemon.uri);
  guest = await conn.createXML(guestXml('gn1', [scsiDisk(qcow2Image(daemon, 'root.qcow2'), 'sda')]));
});
afterAll(async () => {
  await guest?.destroy().catch(() => undefined);
  await conn?.close();
  await daemon?.stop();
});

describe('generated bindings on a real libvirtd', () => {
  it('attaches a qcow2 disk to a running guest, sees it in QMP query-block, and detaches it', async () => {
    const path = qcow2Image(daemon, 'hot.qcow2');
    const xml = scsiDisk(path, 'sdb');
    expect(await queryBlockFiles(guest)).not.toContain(path);
    await guest.attachDeviceFlags(xml, VIR_DOMAIN_AFFECT_LIVE);
    expect(await queryBlockFiles(guest)).toContain(path);
    expect(await guest.getXMLDesc()).toContain(path);
    // a bad device description fails with libvirt's own error, not a crash
    const bad = await guest.attachDeviceFlags('<disk type="file"><nonsense/></disk>', VIR_DOMAIN_AFFECT_LIVE).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(LibvirtError);
    const events = conn.domainEvents({ domain: guest, kinds: ['device-removed', 'agent-lifecycle'] });
    await events.ready;
    await guest.detachDeviceFlags(xml, VIR_DOMAIN_AFFECT_LIVE);
    // a generated event callback (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED) names the device libvirt removed
    for await (const e of events) {
      expect(e).toMatchObject({ kind: 'device-removed', domain: { name: 'gn1', uuid: guest.uuid }, devAlias: expect.stringMatching(/scsi0-0-0-1|sdb/) });
      break;
    }
    // SCSI unplug completes without the guest; libvirt waits for QEMU's DEVICE_DELETED before returning
    expect(await queryBlockFiles(guest)).not.toContain(path);
    expect(await guest.getXMLDesc()).not.toContain(path);
  });

  it('creates, lists, reverts to and deletes an internal snapshot of a guest with a qcow2 disk', async () => {
    const snap = await guest.snapshotCreateXML('<domainsnapshot><name>gs1</name><description>before</description></domainsnapshot>');
    expect(snap.name).toBe('gs1');
    const listed = await guest.listAllSnapshots();
    expect(listed.map((s) => s.name)).toEqual(['gs1']);
    expect(await snap.getXMLDesc()).toContain('<state>running</state>');
    await guest.suspend();
    expect((await guest.state()).state).toBe('paused');
    await snap.revertToSnapshot();
    expect((await guest.state()).state).toBe('running'); // the snapshot was taken running
    await snap.delete();
    expect(await guest.listAllSnapshots()).toEqual([]);
    const gone = await guest.snapshotLookupByName('gs1').catch((e: unknown) => e);
    expect((gone as LibvirtError).codeName).toBe('VIR_ERR_NO_DOMAIN_SNAPSHOT');
  });

  it('reads getAllDomainStats of a running guest as plain objects on Domain objects', async () => {
    const records = await conn.getAllDomainStats(VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_VCPU);
    const mine = records.find((r) => r.domain.uuid === guest.uuid);
    expect(mine).toBeDefined();
    expect(mine!.domain.name).toBe('gn1');
    expect(mine!.stats['state.state']).toBe(1);
    expect(mine!.stats['vcpu.current']).toBe(1);
    expect(typeof mine!.stats['vcpu.0.time']).toMatch(/number|bigint/);
    const withFiles = await guest.qemuMonitorCommandWithFiles('{"execute":"query-status"}', [], 0);
    expect(withFiles.noutfiles).toBe(0);
    expect(withFiles.outfiles).toEqual([]);
    expect(JSON.parse(withFiles.result)).toMatchObject({ return: { status: 'running' } });
    const block = await conn.domainListGetStats([guest], VIR_DOMAIN_STATS_BLOCK);
    expect(block[0]!.stats['block.count']).toBe(1);
  });

  it('defines, starts, inspects, stops and removes a storage pool with volumes; uploads and downloads one as Node streams', async () => {
    const dir = join(daemon.base, 'pool');
    const pool = await conn.storagePoolDefineXML(`<pool type='dir'><name>gnpool</name><target><path>${dir}</path></target></pool>`);
    await pool.build();
    await pool.create();
    expect(await pool.isActive()).toBe(true);
    const vol = await pool.storageVolCreateXML(`<volume><name>v1.qcow2</name><capacity unit='MiB'>4</capacity><target><format type='qcow2'/></target></volume>`);
    expect(await vol.getPath()).toBe(join(dir, 'v1.qcow2'));
    expect(existsSync(join(dir, 'v1.qcow2'))).toBe(true);
    expect((await vol.getInfo()).capacity).toBe(4 * 1024 * 1024);
    expect((await pool.listAllVolumes()).map((v) => v.name)).toEqual(['v1.qcow2']);

    // streams: upload bytes into a raw volume through a Node Writable, read them back through a Readable
    const raw = await pool.storageVolCreateXML(`<volume><name>r1.img</name><capacity unit='KiB'>256</capacity><target><format type='raw'/></target></volume>`);
    const payload = Buffer.alloc(200 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
    const up = await conn.streamNew(VIR_STREAM_NONBLOCK);
    await raw.upload(up, 0, payload.length);
    await pipeline(Readable.from([payload.subarray(0, 70_000), payload.subarray(70_000)]), up.toWritable());
    const down = await conn.streamNew(VIR_STREAM_NONBLOCK);
    await raw.download(down, 0, payload.length);
    const chunks: Buffer[] = [];
    for await (const c of down.toReadable({ chunkSize: 32 * 1024 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    await raw.delete();
    await vol.delete();
    await pool.destroy();
    expect(await pool.isActive()).toBe(false);
    await pool.undefine();
    const gone = await conn.storagePoolLookupByName('gnpool').catch((e: unknown) => e);
    expect((gone as LibvirtError).codeName).toBe('VIR_ERR_NO_STORAGE_POOL');
  });

  it('defines, starts, inspects and destroys an isolated network', async () => {
    const net = await conn.networkDefineXML(`<network><name>gnnet</name><bridge name='gnbr0'/><ip address='192.168.253.1' netmask='255.255.255.0'/></network>`);
    expect(net.name).toBe('gnnet');
    expect(await net.isActive()).toBe(false);
    const started = await net.create().then(
      () => 'started',
      (e: unknown) => e,
    );
    if (started === 'started') {
      expect(await net.isActive()).toBe(true);
      expect(await net.getBridgeName()).toBe('gnbr0');
      await net.destroy();
      expect(await net.isActive()).toBe(false);
    } else {
      // an unprivileged daemon cannot create a bridge: libvirt says so with its own error
      expect(started).toBeInstanceOf(LibvirtError);
      console.log(`network start refused by this daemon: ${(started as LibvirtError).message}`);
    }
    expect((await conn.listAllNetworks()).map((n) => n.name)).toContain('gnnet');
    await net.undefine();
    expect((await conn.listAllNetworks()).map((n) => n.name)).not.toContain('gnnet');
  });

  it('defines a secret, sets and reads its value, lists and undefines it; the value reaches no file of the daemon', async () => {
    const value = `lq-secret-${randomUUID()}`;
    // ephemeral: libvirt keeps it in memory only, so any copy on disk (a log, a state file) would be a leak
    const secret = await conn.secretDefineXML("<secret ephemeral='yes' private='no'><description>libqemu test</description></secret>");
    expect(secret.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await secret.getUsageType()).toBe(VIR_SECRET_USAGE_TYPE_NONE);
    expect(await secret.setValue(Buffer.from(value))).toBe(0);
    expect(Buffer.from(await secret.getValue()).toString()).toBe(value);
    expect((await conn.listAllSecrets(VIR_CONNECT_LIST_SECRETS_EPHEMERAL)).map((s) => s.uuid)).toContain(secret.uuid);
    expect(await conn.numOfSecrets()).toBeGreaterThanOrEqual(1);
    expect((await conn.secretLookupByUUIDString(secret.uuid!)).uuid).toBe(secret.uuid);
    // a value given as a string is refused before it leaves this thread, and the error does not repeat it
    const bad = await secret.setValue(value as never).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidArgumentError);
    expect(`${(bad as Error).message} ${(bad as InvalidArgumentError).hint ?? ''}`).not.toContain(value);
    // a private secret's value cannot be read back over the connection
    const hidden = await conn.secretDefineXML("<secret ephemeral='yes' private='yes'><description>libqemu private</description></secret>");
    await hidden.setValue(Buffer.from(value));
    expect(((await hidden.getValue().catch((e: unknown) => e)) as LibvirtError).codeName).toBe('VIR_ERR_INVALID_SECRET');
    expect(filesContaining(daemon.base, [value, Buffer.from(value).toString('base64')])).toEqual([]);
    await hidden.undefine();
    expect(await secret.undefine()).toBe(0);
    const gone = await conn.secretLookupByUUIDString(secret.uuid!).catch((e: unknown) => e);
    expect((gone as LibvirtError).codeName).toBe('VIR_ERR_NO_SECRET');
  });

  it('nwfilters: a session daemon lists none and refuses to define one, with libvirt\'s own error', async () => {
    expect(await conn.listAllNWFilters()).toEqual([]);
    const refused = await conn.nwFilterDefineXML("<filter name='lqtest' chain='root'><rule action='accept' direction='in'><all/></rule></filter>").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LibvirtError);
    expect((refused as LibvirtError).codeName).toBe('VIR_ERR_OPERATION_INVALID');
    expect((refused as LibvirtError).message).toContain("Can't define NWFilters in session mode");
    const missing = await conn.nwFilterLookupByName('clean-traffic').catch((e: unknown) => e);
    expect((missing as LibvirtError).codeName).toBe('VIR_ERR_NO_NWFILTER');
  });
});
