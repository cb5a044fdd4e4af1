/**
 * The ownership policy keeps its word: every libvirt function it tells users to call instead of a
 * refused QMP command is bound, and every refusal names the libqemu call that does it, which exists.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIBVIRT_BINDINGS } from '../../src/generated/libvirt/manifests.js';
import { Guest } from '../../src/hybrid/guest.js';
import { GuestSnapshots } from '../../src/hybrid/guest-snapshots.js';
import { Hypervisor } from '../../src/hybrid/hypervisor.js';
import { classifyCommand, libvirtOwnedRows } from '../../src/hybrid/policy.js';
import { LIBQEMU_CALLS } from '../../src/hybrid/policy-calls.js';
import { DomainCore } from '../../src/libvirt/domain-core.js';

const bound = new Map(LIBVIRT_BINDINGS.map((b) => [b.c, `${b.class ?? 'Connection'}.${b.method}`]));
const boundMethods = new Set(bound.values());

/** Whether `call` (e.g. 'guest.snapshots.create()', 'domain.blockCopy()') names a method that exists. */
function exists(call: string): boolean {
  const path = call.replace(/\(\)$/, '').split('.');
  const [root, ...rest] = path;
  const has = (proto: object, name: string): boolean => name in proto;
  switch (root) {
    case 'guest':
      if (rest[0] === 'snapshots') return has(Guest.prototype, 'snapshots') && rest.length === 2 && has(GuestSnapshots.prototype, rest[1]!);
      return rest.length === 1 && typeof (Guest.prototype as unknown as Record<string, unknown>)[rest[0]!] === 'function';
    case 'hv':
      return rest.length === 1 && typeof (Hypervisor.prototype as unknown as Record<string, unknown>)[rest[0]!] === 'function';
    case 'domain':
      return boundMethods.has(`Domain.${rest[0]}`) || has(DomainCore.prototype, rest[0]!);
    case 'connection':
      return boundMethods.has(`Connection.${rest[0]}`);
    case 'checkpoint':
      return boundMethods.has(`DomainCheckpoint.${rest[0]}`);
    case 'snapshot':
      return boundMethods.has(`DomainSnapshot.${rest[0]}`);
    default:
      return false;
  }
}

describe('the ownership policy keeps its word', () => {
  it('names only libvirt functions that libqemu binds, and says which method runs each', () => {
    const policy = readFileSync(join(import.meta.dirname, '../../src/hybrid/policy.ts'), 'utf8');
    const named = [...new Set([...policy.matchAll(/\bvir[A-Z]\w+/g)].map((m) => m[0]))].sort();
    expect(named.length).toBeGreaterThan(20);
    const missing = named.filter((c) => !bound.has(c));
    expect(missing, 'policy names libvirt functions that are not bound').toEqual([]);
    expect(bound.get('virDomainAttachDeviceFlags')).toBe('Domain.attachDeviceFlags');
    expect(bound.get('virDomainSetMemoryFlags')).toBe('Domain.setMemoryFlags');
    expect(bound.get('virDomainSnapshotCreateXML')).toBe('Domain.snapshotCreateXML');
  });

  it('every row that names a libvirt function to use instead also names the libqemu call, and that call exists', () => {
    const rows = libvirtOwnedRows();
    expect(rows.length).toBeGreaterThan(40);
    let checked = 0;
    for (const row of rows) {
      const libvirtNames = [...row.instead.matchAll(/\bvir[A-Z]\w+/g)].map((m) => m[0]);
      if (libvirtNames.length === 0) continue;
      const probe = row.prefix ? `${row.command}x` : row.command;
      const { kind, instead } = classifyCommand(probe);
      expect(kind, probe).toBe('libvirt-owned');
      for (const c of libvirtNames) {
        const call = LIBQEMU_CALLS[c];
        expect(call, `${c} (policy row '${row.command}') has no libqemu call in policy-calls.ts`).toBeDefined();
        expect(instead, `the refusal of '${probe}' names ${call}`).toContain(call);
        expect(exists(call!), `${call} (for ${c}) exists`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(60);
    // the facade methods the issue names are among them
    for (const call of ['guest.attachDevice()', 'guest.detachDevice()', 'guest.updateDevice()', 'guest.setMemory()', 'guest.snapshots.create()', 'guest.snapshots.revert()', 'guest.snapshots.delete()']) {
      expect(Object.values(LIBQEMU_CALLS)).toContain(call);
    }
  });

  it('the check catches a name that does not exist', () => {
    expect(exists('guest.attachDevice()')).toBe(true);
    expect(exists('guest.attachDevices()')).toBe(false);
    expect(exists('guest.snapshots.purge()')).toBe(false);
    expect(exists('domain.blockCopyy()')).toBe(false);
  });
});
