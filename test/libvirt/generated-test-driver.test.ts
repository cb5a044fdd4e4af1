/**
 * The generated bindings against libvirt's in-process test:///default driver: every read-only method of
 * every object is called (a sweep), then a table of calls that take input runs each with valid input and,
 * where it takes input, with bad input. Prints how many bound functions were exercised.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { virErrorNumber } from '../../src/generated/libvirt/enums.js';
import { LIBVIRT_BINDINGS } from '../../src/generated/libvirt/manifests.js';
import { Connection, LibvirtError, LibvirtObject, type Domain } from '../../src/libvirt/index.js';

let conn: Connection;
/** C function → what happened: 'ok', or the libvirt error name it failed with. */
const outcome = new Map<string, string>();

beforeAll(async () => {
  conn = await Connection.open('test:///default');
  // Record every generated call the connection runs, whichever object made it.
  const call = conn.call.bind(conn);
  conn.call = (c, tags, args, options) =>
    call(c, tags, args, options).then(
      (v) => {
        outcome.set(c, 'ok');
        return v;
      },
      (err: unknown) => {
        if (!outcome.has(c) || outcome.get(c) !== 'ok') outcome.set(c, err instanceof LibvirtError ? err.codeName : (err as Error).constructor.name);
        throw err;
      },
    );
});

afterAll(async () => {
  const bound = LIBVIRT_BINDINGS.length;
  const ok = [...outcome.values()].filter((v) => v === 'ok').length;
  const unsupported = [...outcome.entries()].filter(([, v]) => v === 'VIR_ERR_NO_SUPPORT').map(([c]) => c);
  const failed = [...outcome.entries()].filter(([, v]) => v !== 'ok' && v !== 'VIR_ERR_NO_SUPPORT');
  console.log(
    `test:///default exercised ${outcome.size - unsupported.length} of ${bound} bound functions (${ok} succeeded, ${failed.length} failed as libvirt said they should); ` +
      `${unsupported.length} more are not implemented by the test driver`,
  );
  await conn?.close();
});

/** Methods the sweep must not call (they change state; the table below calls them in order). */
const MUTATING =
  /^(create|destroy|undefine|delete|shutdown|reboot|reset|suspend|resume|set|define|attach|detach|update|abort|save|restore|managedSave|migrate|block|core|inject|send|pm|fs|rename|revert|free|upload|download|wipe|resize|build|refresh|add|del|open|screenshot|agent|authorized|backup|checkpoint|snapshot|startDirty|interfaceChange|change|virt|nodeSet|nodeSuspend|nodeAlloc|qemu|memoryPeek|domainRestore|domainSave|domainCreate|domainDefine|domainMigrate|networkCreate|networkDefine|storagePool(Create|Define)|storageVol|secret(Define|SetValue)|nwfilter(Define|Binding)|nodeDevice(Create|Define)|interfaceDefine|register|restore|event|initialize|resetLastError|connResetLastError|fdAssociate|graphics|stream|recv|finish|abort|compare|baseline|domainXML|findStoragePoolSources|nodeDeviceLookupSCSI|listDomainsID|listDefined|list(Networks|StoragePools|Interfaces|NodeDevices|Secrets|NWFilters|Volumes|Children|AllChildren|ChildrenNames|Names)|numOf|getCPUModelNames)/;

/** Calls every method of `obj` whose only parameters are optional (flags): the read-only getters. */
async function sweep(obj: object, what: string): Promise<void> {
  const proto = Object.getPrototypeOf(obj) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const fn = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
    if (typeof fn !== 'function' || name === 'constructor' || MUTATING.test(name)) continue;
    // only methods whose parameters all have defaults (flags = 0) or are the call options
    const params = /^[^(]*\(([^)]*)\)/.exec(fn.toString())?.[1] ?? '';
    const required = params.split(',').map((p) => p.trim()).filter((p) => p && p !== 'options' && !p.includes('='));
    if (required.length > 0) continue; // takes input: the table covers it
    await (fn as () => Promise<unknown>).call(obj).catch((err: unknown) => {
      if (!(err instanceof LibvirtError)) throw new Error(`${what}.${name}() failed with ${String(err)}`);
    });
  }
}

type Expected = keyof typeof virErrorNumber | 'InvalidArgumentError';
async function rejects(p: Promise<unknown>, code: Expected | Expected[]): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (code === 'InvalidArgumentError') expect(err).toBeInstanceOf(InvalidArgumentError);
  else {
    expect(err, `expected ${String(code)}`).toBeInstanceOf(LibvirtError);
    expect([code].flat()).toContain((err as LibvirtError).codeName);
  }
}

const NET_XML = `<network><name>lq-net</name><bridge name="lqbr0"/><ip address="192.168.254.1" netmask="255.255.255.0"/></network>`;
const POOL_XML = `<pool type="dir"><name>lq-pool</name><target><path>/lq-pool</path></target></pool>`;
const VOL_XML = `<volume><name>lq-vol.img</name><capacity unit="MiB">1</capacity></volume>`;
const SECRET_XML = `<secret ephemeral="no" private="no"><uuid>0d9a0e2c-6b1c-4a55-8f64-6a9f3c1e2b11</uuid><usage type="volume"><volume>/lq-pool/lq-vol.img</volume></usage></secret>`;

describe('generated bindings on test:///default', () => {
  let dom: Domain;

  it('sweeps every read-only method of every object type', async () => {
    await sweep(conn, 'connection');
    [dom] = (await conn.listAllDomains()) as [Domain];
    await sweep(dom, 'domain');
    for (const n of await conn.listAllNetworks()) await sweep(n, 'network');
    for (const p of await conn.listAllStoragePools()) {
      await sweep(p, 'pool');
      for (const v of await p.listAllVolumes()) await sweep(v, 'volume');
    }
    for (const i of await conn.listAllInterfaces()) await sweep(i, 'interface');
    for (const d of (await conn.listAllNodeDevices()).slice(0, 3)) await sweep(d, 'node device');
    expect(outcome.get('virDomainGetXMLDesc')).toBe('ok');
    expect(outcome.get('virConnectGetCapabilities')).toBe('ok');
    expect(outcome.get('virNodeGetInfo')).toBe('ok');
    expect(outcome.get('virStoragePoolGetInfo')).toBe('ok');
  });

  it('domains: lookups, legacy lists, lifecycle, memory and vCPUs, typed parameters, metadata (valid and bad input)', async () => {
    expect((await conn.domainLookupByName('test')).uuid).toBe(dom.uuid);
    await rejects(conn.domainLookupByName('no-such-domain'), 'VIR_ERR_NO_DOMAIN');
    expect((await conn.domainLookupByUUIDString(dom.uuid)).name).toBe('test');
    await rejects(conn.domainLookupByUUIDString('not-a-uuid'), 'VIR_ERR_INVALID_ARG');
    expect((await conn.domainLookupByUUID(Buffer.from(await dom.getUUID()))).name).toBe('test');
    await rejects(conn.domainLookupByUUID('x' as never), 'InvalidArgumentError');
    const id = await dom.getID();
    expect((await conn.domainLookupByID(id)).name).toBe('test');
    await rejects(conn.domainLookupByID(9999), 'VIR_ERR_NO_DOMAIN');
    expect(await conn.listDomainsID(16)).toContain(id);
    await rejects(conn.listDomainsID(-1), 'InvalidArgumentError');
    expect(await conn.numOfDomains()).toBeGreaterThan(0);
    expect(await conn.listDefinedDomains(16)).toEqual([]);
    expect(await conn.numOfDefinedDomains()).toBe(0);

    await dom.setMemoryFlags(1024 * 1024, 0);
    expect((await dom.getInfo()).memory).toBe(1024 * 1024);
    await rejects(dom.setMemoryFlags(-5, 0), 'InvalidArgumentError');
    await dom.setVcpusFlags(1, 0);
    await rejects(dom.setVcpusFlags(1000, 0), ['VIR_ERR_INVALID_ARG', 'VIR_ERR_ARGUMENT_UNSUPPORTED']);
    expect(await dom.getMaxVcpus()).toBeGreaterThan(0);

    const mem = await dom.getMemoryParameters(0);
    expect(Object.keys(mem)).toContain('hard_limit');
    await dom.setMemoryParameters({ hard_limit: 2_000_000 }, 0);
    expect((await dom.getMemoryParameters(0)).hard_limit).toBe(2_000_000);
    await rejects(dom.setMemoryParameters({ hard_limit: 'lots' }, 0), 'VIR_ERR_INVALID_ARG');
    const sched = await dom.getSchedulerType();
    expect(sched.returned).toBe('fair');
    expect(Object.keys(await dom.getSchedulerParameters())).toContain('weight');
    await dom.setSchedulerParameters({ weight: 100 });
    await rejects(dom.setSchedulerParameters({ nonsense: 1 }), ['VIR_ERR_INVALID_ARG', 'VIR_ERR_ARGUMENT_UNSUPPORTED']);
    await dom.setBlkioParameters({ weight: 500 }, 0).catch((e: unknown) => expect((e as LibvirtError).codeName).toBe('VIR_ERR_NO_SUPPORT'));

    await dom.setMetadata(1 /* VIR_DOMAIN_METADATA_DESCRIPTION */, 'described', null, null, 0);
    expect(await dom.getMetadata(1, null, 0)).toBe('described');
    await rejects(dom.getMetadata(2, null, 0), 'VIR_ERR_INVALID_ARG');

    expect((await dom.getState()).state).toBe(1);
    await dom.suspend();
    expect((await dom.getState()).state).toBe(3);
    await dom.resume();
    await rejects(dom.resume(), ['VIR_ERR_OPERATION_INVALID', 'VIR_ERR_INTERNAL_ERROR']); // the test driver says 'domain is not paused' as an internal error
    await dom.reset();
    await dom.reboot();
  });

  it('statistics: getAllDomainStats and domainListGetStats as plain objects on Domain objects', async () => {
    const all = await conn.getAllDomainStats(0, 0);
    expect(all[0]!.domain.name).toBe('test');
    expect(all[0]!.stats['state.state']).toBe(1);
    const listed = await conn.domainListGetStats([dom], 0, 0);
    expect(listed[0]!.domain.uuid).toBe(dom.uuid);
    await rejects(conn.domainListGetStats([{} as Domain], 0, 0), 'InvalidArgumentError');
    const blk = await dom.getBlockInfo('/guest/diskimage', 0).catch((e: unknown) => e);
    expect(blk instanceof LibvirtError || typeof blk === 'object').toBe(true);
  });

  it('snapshots: create, list, current, children, revert, delete', async () => {
    const snap = await dom.snapshotCreateXML('<domainsnapshot><name>lq-s1</name></domainsnapshot>', 0);
    await rejects(dom.snapshotCreateXML('<not-a-snapshot', 0), ['VIR_ERR_XML_ERROR', 'VIR_ERR_XML_DETAIL']);
    expect(snap.name).toBe('lq-s1');
    expect((await dom.listAllSnapshots(0)).map((s) => s.name)).toContain('lq-s1');
    expect(await dom.snapshotNum(0)).toBeGreaterThan(0);
    expect(await dom.snapshotListNames(8, 0)).toContain('lq-s1');
    expect((await dom.snapshotCurrent(0)).name).toBe('lq-s1');
    expect(await dom.hasCurrentSnapshot(0)).toBe(1);
    expect((await dom.snapshotLookupByName('lq-s1', 0)).name).toBe('lq-s1');
    await rejects(dom.snapshotLookupByName('nope', 0), 'VIR_ERR_NO_DOMAIN_SNAPSHOT');
    const child = await dom.snapshotCreateXML('<domainsnapshot><name>lq-s2</name></domainsnapshot>', 0);
    expect((await snap.listAllChildren(0)).map((s) => s.name)).toEqual(['lq-s2']);
    expect(await snap.numChildren(0)).toBe(1);
    expect(await snap.listChildrenNames(4, 0)).toEqual(['lq-s2']);
    expect((await child.getParent(0)).name).toBe('lq-s1');
    expect(await snap.getXMLDesc(0)).toContain('<name>lq-s1</name>');
    expect(await snap.isCurrent(0)).toBe(false);
    expect(await snap.hasMetadata(0)).toBe(1);
    expect((await snap.getDomain()).uuid).toBe(dom.uuid);
    expect(snap.getConnect).toBeTypeOf('function');
    expect(await snap.getConnect()).toBe(conn);
    await snap.revertToSnapshot(0);
    await rejects(snap.revertToSnapshot(-1), 'InvalidArgumentError');
    await child.delete(0);
    await snap.delete(0);
    expect(await dom.listAllSnapshots(0)).toEqual([]);
  });

  it('networks, pools, volumes, secrets and interfaces: define, start, inspect, stop, undefine', async () => {
    const net = await conn.networkDefineXML(NET_XML);
    await rejects(conn.networkDefineXML('<network>'), ['VIR_ERR_XML_ERROR', 'VIR_ERR_XML_DETAIL']);
    expect(await net.isActive()).toBe(false);
    await net.create();
    expect(await net.isActive()).toBe(true);
    expect(await net.getBridgeName()).toBe('lqbr0');
    expect((await conn.networkLookupByName('lq-net')).uuid).toBe(net.uuid);
    await rejects(conn.networkLookupByName('nope'), 'VIR_ERR_NO_NETWORK');
    expect((await conn.networkLookupByUUIDString(net.uuid!)).name).toBe('lq-net');
    await net.setAutostart(1);
    expect(await net.getAutostart()).toBe(1);
    expect(await conn.listNetworks(8)).toContain('lq-net');
    expect(await conn.numOfNetworks()).toBeGreaterThan(1);
    await rejects(net.getDHCPLeases(null, 0), 'VIR_ERR_NO_SUPPORT'); // the test driver has no DHCP server
    await net.destroy();
    await net.undefine();
    await rejects(net.create(), 'VIR_ERR_NO_NETWORK');

    const pool = await conn.storagePoolDefineXML(POOL_XML, 0);
    await pool.create(0);
    const info = await pool.getInfo();
    expect(info.state).toBe(2 /* running */);
    const vol = await pool.storageVolCreateXML(VOL_XML, 0);
    await rejects(pool.storageVolCreateXML('<volume/>', 0), ['VIR_ERR_XML_ERROR', 'VIR_ERR_XML_DETAIL']);
    expect(await vol.getName()).toBe('lq-vol.img');
    expect((await vol.getInfo()).capacity).toBe(1024 * 1024);
    expect(await vol.getPath()).toBe('/lq-pool/lq-vol.img');
    expect((await conn.storageVolLookupByPath('/lq-pool/lq-vol.img')).name).toBe('lq-vol.img');
    expect((await pool.storageVolLookupByName('lq-vol.img')).name).toBe('lq-vol.img');
    expect((await vol.storagePoolLookupByVolume()).name).toBe('lq-pool');
    expect(await pool.listVolumes(8)).toEqual(['lq-vol.img']);
    expect(await pool.numOfVolumes()).toBe(1);
    await pool.refresh(0);

    const secret = await conn.secretDefineXML(SECRET_XML, 0).catch((e: unknown) => e);
    if (!(secret instanceof LibvirtError)) {
      const s = secret as Awaited<ReturnType<typeof conn.secretDefineXML>>;
      await s.setValue(Buffer.from('s3cret'), 0);
      expect(Buffer.from(await s.getValue(0)).toString()).toBe('s3cret');
      await s.undefine();
    }

    await vol.delete(0);
    await pool.destroy();
    await pool.undefine();
    await rejects(conn.storagePoolLookupByName('lq-pool'), 'VIR_ERR_NO_STORAGE_POOL');

    const [iface] = await conn.listAllInterfaces(0);
    expect(iface).toBeInstanceOf(LibvirtObject);
    expect(await iface!.getMACString()).toMatch(/:/);
    expect((await conn.interfaceLookupByName(iface!.name!)).name).toBe(iface!.name);
    await rejects(conn.interfaceLookupByName('nope0'), 'VIR_ERR_NO_INTERFACE');
  });

  it('module functions and errors run on the connection', async () => {
    const v = await conn.libvirtVersion('Test');
    expect(v.libVer).toBe(9_000_000);
    await conn.domainLookupByName('still-no-such-domain').catch(() => undefined);
    expect(await conn.getLastErrorMessage()).toMatch(/not found/);
    expect(await conn.getLastErrorCode()).toBe(virErrorNumber.VIR_ERR_NO_DOMAIN);
    await conn.resetLastError();
    expect(await conn.getLastError()).toBeNull();
    expect(await conn.getCapabilities()).toContain('<capabilities>');
    expect(await conn.getMaxVcpus('test')).toBeGreaterThan(0);
    await rejects(conn.getMaxVcpus(7 as never), 'InvalidArgumentError');
  });

  it('releases every object of every class that is garbage-collected, and the rest on close()', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const c = await Connection.open('test:///default');
    for (let i = 0; i < 20; i++) {
      await Promise.all([c.listAllDomains(), c.listAllNetworks(), c.listAllStoragePools(), c.listAllInterfaces(), c.listAllNodeDevices()]);
    }
    const kept = await c.listAllNetworks();
    expect(c.openHandles).toBeGreaterThan(100);
    for (let i = 0; i < 30 && c.openHandles > kept.length; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(c.openHandles).toBe(kept.length);
    await c.close();
    expect(c.openHandles).toBe(0);
    expect(kept[0]!.name).toBe('default'); // still referenced until here
  });

  it('runs the rest of what the test driver implements: pinning, IOThreads, statistics, tunables, save/restore, dumps, keys, node and CPU info', async () => {
    const d = (await conn.listAllDomains())[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'lq-gen-'));
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ['virDomainPinVcpu', () => d.pinVcpu(0, Buffer.from([1]))],
        ['virDomainPinVcpuFlags', () => d.pinVcpuFlags(0, Buffer.from([1]), 0)],
        ['virDomainGetVcpuPinInfo', () => d.getVcpuPinInfo(2, 1, 0)],
        ['virDomainPinEmulator', () => d.pinEmulator(Buffer.from([1]), 0)],
        ['virDomainGetEmulatorPinInfo', () => d.getEmulatorPinInfo(1, 0)],
        ['virDomainAddIOThread', () => d.addIOThread(5, 0)],
        ['virDomainPinIOThread', () => d.pinIOThread(5, Buffer.from([1]), 0)],
        ['virDomainGetIOThreadInfo', () => d.getIOThreadInfo(0)],
        ['virDomainDelIOThread', () => d.delIOThread(5, 0)],
        ['virDomainMemoryStats', () => d.memoryStats(8, 0)],
        ['virDomainBlockStats', () => d.blockStats('vda')],
        ['virDomainInterfaceStats', () => d.interfaceStats('testnet0')],
        ['virDomainGetBlockInfo', () => d.getBlockInfo('vda', 0)],
        ['virDomainGetDiskErrors', () => d.getDiskErrors(0)],
        ['virDomainGetInterfaceParameters', () => d.getInterfaceParameters('testnet0', 0)],
        ['virDomainSetInterfaceParameters', () => d.setInterfaceParameters('testnet0', { 'inbound.average': 100 }, 0)],
        ['virDomainGetBlockIoTune', () => d.getBlockIoTune('vda', 0)],
        ['virDomainGetNumaParameters', () => d.getNumaParameters(0)],
        ['virDomainSetNumaParameters', () => d.setNumaParameters({ numa_nodeset: '0' }, 0)],
        ['virDomainGetBlkioParameters', () => d.getBlkioParameters(0)],
        ['virDomainSetBlkioParameters', () => d.setBlkioParameters({ weight: 300 }, 0)],
        ['virDomainGetPerfEvents', () => d.getPerfEvents(0)],
        ['virDomainSetPerfEvents', () => d.setPerfEvents({ cmt: true }, 0)],
        ['virDomainGetTime', () => d.getTime(0)],
        ['virDomainSetAutostart', () => d.setAutostart(1)],
        ['virDomainGetControlInfo', () => d.getControlInfo(0)],
        ['virDomainSetMemory', () => d.setMemory(1048576)],
        ['virDomainSetMemoryStatsPeriod', () => d.setMemoryStatsPeriod(5, 0)],
        ['virDomainSetVcpus', () => d.setVcpus(2)],
        ['virDomainGetVcpusFlags', () => d.getVcpusFlags(0)],
        ['virDomainSendKey', () => d.sendKey(0, 100, [30], 0)],
        ['virDomainInjectNMI', () => d.injectNMI(0)],
        ['virDomainSetUserPassword', () => d.setUserPassword('root', 'x', 0)],
        ['virDomainInterfaceAddresses', () => d.interfaceAddresses(0, 0)],
        ['virDomainGetFSInfo', () => d.getFSInfo(0)],
        ['virDomainGetSecurityLabel', () => d.getSecurityLabel()],
        ['virDomainCoreDump', () => d.coreDump(join(dir, 'core'), 0)],
        ['virDomainCoreDumpWithFormat', () => d.coreDumpWithFormat(join(dir, 'core2'), 0, 0)],
        ['virDomainScreenshot', async () => d.screenshot(await conn.streamNew(0), 0, 0)],
        ['virDomainManagedSave', () => d.managedSave(0)],
        ['virDomainHasManagedSaveImage', () => d.hasManagedSaveImage(0)],
        ['virDomainManagedSaveRemove', () => d.managedSaveRemove(0)],
        ['virDomainCreate', () => d.create()],
        ['virDomainSave', () => d.save(join(dir, 'saved'))],
        ['virDomainSaveImageGetXMLDesc', () => conn.domainSaveImageGetXMLDesc(join(dir, 'saved'), 0)],
        ['virDomainRestore', () => conn.domainRestore(join(dir, 'saved'))],
        ['virDomainCheckpointCreateXML', () => d.checkpointCreateXML('<domaincheckpoint><name>lq-c1</name></domaincheckpoint>', 0)],
        ['virDomainListAllCheckpoints', () => d.listAllCheckpoints(0)],
        ['virNodeGetSecurityModel', () => conn.nodeGetSecurityModel()],
        ['virNodeGetCPUMap', () => conn.nodeGetCPUMap(0)],
        ['virNodeGetCellsFreeMemory', () => conn.nodeGetCellsFreeMemory(0, 2)],
        ['virNodeGetFreePages', () => conn.nodeGetFreePages([4, 2048], 0, 2, 0)],
        ['virNodeGetCPUStats', () => conn.nodeGetCPUStats(-1, 0)],
        ['virConnectBaselineCPU', () => conn.baselineCPU(['<cpu><arch>x86_64</arch><model>qemu64</model></cpu>'], 0)],
        ['virConnectGetCPUModelNames', () => conn.getCPUModelNames('x86_64', 0)],
        ['virNodeDeviceLookupByName', () => conn.nodeDeviceLookupByName('computer')],
        ['virInterfaceChangeBegin', () => conn.interfaceChangeBegin(0)],
        ['virInterfaceChangeRollback', () => conn.interfaceChangeRollback(0)],
        ['virConnectListDefinedNetworks', () => conn.listDefinedNetworks(8)],
        ['virConnectListStoragePools', () => conn.listStoragePools(8)],
        ['virDomainShutdownFlags', () => d.shutdownFlags(0)],
        ['virDomainCreateWithFlags', () => d.createWithFlags(0)],
      ];
      for (const [c, call] of calls) {
        await call().catch((err: unknown) => {
          throw new Error(`${c} failed: ${String(err)}`);
        });
        expect(outcome.get(c), c).toBe('ok');
      }
      // results come back decoded: a struct, a list of structs with their strings, a byte map
      expect(await d.blockStats('vda')).toMatchObject({ rd_req: expect.any(Number) });
      expect((await d.getIOThreadInfo(0)).length).toBeGreaterThanOrEqual(0);
      expect((await d.interfaceAddresses(0, 0))[0]).toMatchObject({ name: expect.any(String), addrs: expect.any(Array) });
      expect((await conn.nodeGetCPUMap(0)).cpumap).toBeInstanceOf(Uint8Array);
      // arrays the XML types as single values: as many entries as asked for (2 cells; 2 page sizes × 2 cells)
      expect(await conn.nodeGetCellsFreeMemory(0, 2)).toHaveLength(2);
      expect(await conn.nodeGetFreePages([4, 2048], 0, 2, 0)).toHaveLength(4);
      await expect(conn.domainLookupByUUID(Buffer.alloc(3))).rejects.toThrow(/16 bytes/);
      // and bad input fails on this thread, naming the parameter
      await expect(d.pinVcpu(0, [1] as never)).rejects.toThrow(/cpumap must be a Buffer or Uint8Array/);
      await expect(d.sendKey(0, 100, ['a'] as never, 0)).rejects.toThrow(/keycodes must be an array of integers/);
      await expect(conn.nodeGetCPUStats(1.5, 0)).rejects.toThrow(/cpuNum must be a 32-bit integer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
