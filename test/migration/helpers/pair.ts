/**
 * Two private libvirtds side by side for migration tests (two "hosts" on one machine), and a
 * tiny guest on one of them running the memory-dirtying kernel, with its second QMP monitor.
 */
import { randomUUID } from 'node:crypto';
import { Connection, type Domain } from '../../../src/libvirt/index.js';
import { startMigration, type MigrationJob } from '../../../src/migration/engine.js';
import { libvirtMigrationControl, libvirtMigrationSource } from '../../../src/migration/libvirt-ports.js';
import type { MigrateOptions } from '../../../src/migration/options.js';
import { QmpClient } from '../../../src/qmp/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../../src/testing/index.js';
import { buildDirtyKernel, dirtyCmdline } from '../guest/build.js';

export interface Side {
  daemon: PrivateLibvirtd;
  conn: Connection;
}

export interface Pair {
  a: Side;
  b: Side;
  /** The source daemon's host UUID (libvirtd.conf host_uuid). */
  hostUuidA: string;
  stop(): Promise<void>;
}

export async function startPair(): Promise<Pair> {
  const hostUuidA = randomUUID();
  // Each daemon its own host UUID (libvirt refuses a migration to the host it runs on) and its own
  // migration port range (so pairs of different test files never race for a port).
  const [da, db] = await Promise.all([
    startPrivateLibvirtd({ prefix: 'mga', hostUuid: hostUuidA, migrationPorts: { min: 49200, max: 49229 } }),
    startPrivateLibvirtd({ prefix: 'mgb', migrationPorts: { min: 49230, max: 49259 } }),
  ]);
  try {
    const [ca, cb] = await Promise.all([Connection.open(da.uri), Connection.open(db.uri)]);
    return {
      hostUuidA,
      a: { daemon: da, conn: ca },
      b: { daemon: db, conn: cb },
      async stop() {
        await Promise.allSettled([ca.close(), cb.close()]);
        await Promise.allSettled([da.stop(), db.stop()]);
      },
    };
  } catch (err) {
    await Promise.allSettled([da.stop(), db.stop()]);
    throw err;
  }
}

export interface TestGuest {
  name: string;
  domain: Domain;
  qmpSocket: string;
  qmp: QmpClient;
}

let seq = 0;

/** Starts a guest on `side` running dirty.elf; `mib`/`spin` as in dirty.S. */
export async function startDirtyGuest(side: Side, opts: { mib?: number; spin?: number } = {}): Promise<TestGuest> {
  const name = `mg${process.pid % 10000}-${++seq}`;
  const qmpSocket = `${side.daemon.qmpDir}/${name}.sock`;
  const kernel = await buildDirtyKernel();
  const xml = tinyGuestXml({ name, qmpSocket, kernel, cmdline: dirtyCmdline(opts) });
  const domain = await side.conn.createXML(xml);
  const qmp = await QmpClient.connect({ path: qmpSocket });
  return { name, domain, qmpSocket, qmp };
}

/** Migrates `guest` from `from` to `to` with the engine, the way guest.migrate() does. */
export function migrate(guest: { domain: Domain; qmp?: QmpClient }, to: Side, options: MigrateOptions = {}): MigrationJob {
  return startMigration({
    source: libvirtMigrationSource(guest.domain),
    control: libvirtMigrationControl(guest.domain),
    qmp: guest.qmp,
    destination: { uri: to.daemon.uri, monitorDir: to.daemon.qmpDir },
    options,
  });
}

/** The guest's state on a side, or undefined when that daemon does not have it. */
export async function stateOn(side: Side, name: string): Promise<string | undefined> {
  try {
    return (await (await side.conn.lookupDomain(name)).state()).state;
  } catch {
    return undefined;
  }
}

/** Destroys (and undefines) the guest on a side if it is there. */
export async function destroyOn(side: Side, name: string): Promise<void> {
  let dom: Domain;
  try {
    dom = await side.conn.lookupDomain(name);
  } catch {
    return;
  }
  await dom.destroy().catch(() => undefined);
  await dom.undefine().catch(() => undefined);
}
