/**
 * The engine's ports over src/libvirt. Two connections to the source daemon, because libvirt 9.0 must
 * see one RPC in flight per connection and virDomainMigrateToURI3 is one RPC for the whole migration:
 * - a dedicated connection for the migration call alone (opened as soon as the port is made, so the
 *   ~60 ms open overlaps the preparation, and closed after the call);
 * - the guest's own connection for everything during it (job stats, abort, suspend, events), so those
 *   never wait behind the migration and the caller's other calls on it keep working.
 */
import { Connection, type ConnectionGap, type Domain, type DomainEvent, LibvirtError } from '../libvirt/index.js';
import type { LibvirtMigrationEvent, MigrationControl, MigrationSource } from './ports.js';
import type { MigrationCall } from './options.js';
import type { JobStatsRecord } from './progress.js';

const VIR_ERR_NO_DOMAIN = 42;
/** Deadline for the short calls (XML, job stats, abort, suspend…). */
const CONTROL_CALL_MS = 30_000;

/** The domain event kinds the engine follows. */
export type MigrationEventKind = 'lifecycle' | 'migration-iteration' | 'job-completed';

/** One event subscription per kind (the facade shares them through its EventRelay). */
export type DomainEventSource = (kind: MigrationEventKind) => AsyncIterableIterator<DomainEvent | ConnectionGap> & { ready: Promise<void> };

/** The migration call, on a connection of its own. */
export function libvirtMigrationSource(domain: Domain): MigrationSource {
  let dedicated: Promise<Connection> | undefined;
  let used = false;
  const open = (): Promise<Connection> => {
    if (!dedicated) {
      dedicated = Connection.open(domain.connection.uri, { callTimeoutMs: CONTROL_CALL_MS });
      dedicated.catch(() => undefined); // reported when used
    }
    return dedicated;
  };
  const release = async (): Promise<void> => {
    const c = dedicated;
    dedicated = undefined;
    if (c) await (await c.catch(() => undefined))?.close().catch(() => undefined);
  };
  return {
    name: domain.name,
    migratableXml: () => {
      void open(); // the engine asks for the XML first: open the migration's connection meanwhile
      return domain.xml({ migratable: true, timeoutMs: CONTROL_CALL_MS });
    },
    isPersistent: () => domain.isPersistent({ timeoutMs: CONTROL_CALL_MS }),
    async migrateToUri3(destinationUri: string, call: MigrationCall, timeoutMs: number): Promise<void> {
      if (used) throw new Error('libvirtMigrationSource: the migration call was already made');
      used = true;
      try {
        const conn = await open();
        const dom = await conn.lookupDomain(domain.uuid);
        await dom.migrateToURI3(destinationUri, call.params, call.flags, { timeoutMs });
      } finally {
        await release();
      }
    },
    close: release,
  };
}

/** Job stats, abort, suspend/resume and events on the guest's own connection. */
export function libvirtMigrationControl(domain: Domain, options: { events?: DomainEventSource } = {}): MigrationControl {
  const opts = { timeoutMs: CONTROL_CALL_MS };
  // One subscription per kind (the connection shares identical ones with the rest of the program).
  const events: DomainEventSource =
    options.events ?? ((kind) => domain.connection.domainEvents({ domain, kinds: [kind], overflow: 'drop-oldest', bufferSize: 256 }));
  return {
    async jobStats(): Promise<JobStatsRecord> {
      const { type, stats } = await domain.jobStats(opts);
      return { ...stats, type };
    },
    abortJob: () => domain.abortJob(opts),
    setMaxDowntime: (ms) => domain.migrateSetMaxDowntime(ms, opts),
    suspend: () => domain.suspend(opts),
    resume: () => domain.resume(opts),
    async state(): Promise<string | undefined> {
      try {
        return (await domain.state(opts)).state;
      } catch (err) {
        if (err instanceof LibvirtError && err.code === VIR_ERR_NO_DOMAIN) return undefined;
        throw err;
      }
    },
    async subscribe(handler: (e: LibvirtMigrationEvent) => void): Promise<() => Promise<void>> {
      const streams = (['migration-iteration', 'job-completed', 'lifecycle'] as const).map((k) => events(k));
      const pumps = streams.map(async (stream) => {
        try {
          for await (const e of stream) {
            const m = toMigrationEvent(e);
            if (m) handler(m);
          }
        } catch {
          // the connection dropped: the migration call reports that itself
        }
      });
      const stop = async (): Promise<void> => {
        await Promise.allSettled(streams.map((s) => s.return?.()));
        await Promise.allSettled(pumps);
      };
      try {
        await Promise.all(streams.map((s) => s.ready));
      } catch (err) {
        await stop();
        throw err;
      }
      return stop;
    },
    close: () => Promise.resolve(),
  };
}

function toMigrationEvent(e: DomainEvent | ConnectionGap): LibvirtMigrationEvent | undefined {
  switch (e.kind) {
    case 'migration-iteration':
      return { kind: 'iteration', iteration: e.iteration };
    case 'job-completed':
      return { kind: 'job-completed', stats: e.stats };
    case 'lifecycle':
      return { kind: 'lifecycle', event: e.event, detail: e.detail };
    default:
      return undefined;
  }
}
