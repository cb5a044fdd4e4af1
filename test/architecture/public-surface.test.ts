/**
 * The public surface is pinned: a change to what users may import (a name added, removed, or turned
 * from a value into a type) fails here until public-surface.txt is updated with it, deliberately:
 * `npx tsx scripts/public-surface.ts --write`, then review the diff.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { describeSurface } from '../../scripts/public-surface.js';

let surface: string;
beforeAll(() => {
  surface = describeSurface();
}, 120_000);

it('every package entry point exports exactly the pinned names', () => {
  const pinned = readFileSync(fileURLToPath(new URL('./public-surface.txt', import.meta.url)), 'utf8');
  expect(surface).toBe(pinned);
});

it('no internal plumbing is public', () => {
  for (const internal of ['MonitorHub', 'MonitorChannel', 'MonitorTransport', 'ConnectPtr', 'DomainPtr', 'DISCONNECTED_ERROR_CLASS', 'NOT_RUNNING_ERROR_CLASS', 'CommandTable', 'EventHub']) {
    expect(surface.split('\n')).not.toContain(internal);
    expect(surface.split('\n')).not.toContain(`${internal} (type)`);
  }
});
