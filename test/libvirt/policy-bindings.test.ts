/** Every libvirt function the ownership policy tells users to call instead of a refused QMP command is bound. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIBVIRT_BINDINGS } from '../../src/generated/libvirt/manifests.js';

describe('the ownership policy keeps its word', () => {
  it('names only libvirt functions that libqemu binds, and says which method runs each', () => {
    const policy = readFileSync(join(import.meta.dirname, '../../src/hybrid/policy.ts'), 'utf8');
    const named = [...new Set([...policy.matchAll(/\bvir[A-Z]\w+/g)].map((m) => m[0]))].sort();
    expect(named.length).toBeGreaterThan(20);
    const bound = new Map(LIBVIRT_BINDINGS.map((b) => [b.c, `${b.class ?? 'Connection'}.${b.method}`]));
    const missing = named.filter((c) => !bound.has(c));
    expect(missing, 'policy names libvirt functions that are not bound').toEqual([]);
    expect(bound.get('virDomainAttachDeviceFlags')).toBe('Domain.attachDeviceFlags');
    expect(bound.get('virDomainSetMemoryFlags')).toBe('Domain.setMemoryFlags');
    expect(bound.get('virDomainSnapshotCreateXML')).toBe('Domain.snapshotCreateXML');
  });
});
