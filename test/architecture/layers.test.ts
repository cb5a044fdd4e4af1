import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkLayers, checkRepository, describeProblems, formatTable, importsOf } from '../../scripts/layers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the layers of src/ and native/', () => {
  const report = checkRepository(root);

  it('import only downwards, with no import cycle', () => {
    // the table is the picture a reader wants when this fails (and in the log when it passes)
    console.log(formatTable(report));
    expect(report.files.length).toBeGreaterThan(50);
    expect(describeProblems(report)).toEqual([]);
  });
});

describe('the layer checker', () => {
  const world = (files: Record<string, string>) => new Map(Object.entries(files));

  it('reads static, type-only, re-export and dynamic imports, and ignores packages', () => {
    const found = importsOf(
      'a.ts',
      [
        "import { a } from './a1.js';",
        "import type { B } from './b.js';",
        "import { type C, type D } from './c.js';",
        "export { e } from './e.js';",
        "export type { F } from './f.js';",
        "import koffi from 'koffi';",
        "const g = await import('./g.js');",
        "let h: import('./h.js').H;",
      ].join('\n'),
    );
    expect(found).toEqual([
      { specifier: './a1.js', typeOnly: false },
      { specifier: './b.js', typeOnly: true },
      { specifier: './c.js', typeOnly: true },
      { specifier: './e.js', typeOnly: false },
      { specifier: './f.js', typeOnly: true },
      { specifier: './g.js', typeOnly: false },
      { specifier: './h.js', typeOnly: true },
    ]);
  });

  it('passes downward imports', () => {
    const report = checkLayers(
      world({
        'src/common/x.ts': 'export const x = 1;',
        'src/qmp/client.ts': "import { x } from '../common/x.js';",
        'src/hybrid/guest.ts': "import { x } from '../common/x.js'; import '../qmp/client.js';",
      }),
    );
    expect(describeProblems(report)).toEqual([]);
    expect(report.table.get('src/hybrid')).toEqual(new Set(['src/common', 'src/qmp']));
  });

  it('fails on an import that points up, type-only included', () => {
    const report = checkLayers(
      world({
        'src/migration/engine.ts': "import type { Guest } from '../hybrid/guest.js';",
        'src/hybrid/guest.ts': 'export class Guest {}',
      }),
    );
    expect(describeProblems(report)).toEqual(['src/migration/engine.ts (migration) imports src/hybrid/guest.ts (hybrid) [type only]: points up']);
  });

  it('fails on a cycle inside one layer, and names every file in it', () => {
    const report = checkLayers(
      world({
        'src/libvirt/connection.ts': "import { Domain } from './domain.js';",
        'src/libvirt/domain.ts': "import { events } from './events.js';",
        'src/libvirt/events.ts': "import type { Connection } from './connection.js';",
        'src/libvirt/ops.ts': "import { Domain } from './domain.js';",
      }),
    );
    expect(report.upward).toEqual([]);
    expect(report.cycles).toEqual([['src/libvirt/connection.ts', 'src/libvirt/domain.ts', 'src/libvirt/events.ts']]);
    expect(describeProblems(report)).toHaveLength(1);
  });

  it('fails on a file in no layer', () => {
    const report = checkLayers(world({ 'src/newfolder/x.ts': "import '../common/y.js';", 'src/common/y.ts': '' }));
    expect(describeProblems(report)).toEqual(['src/newfolder/x.ts: in no layer (add its folder to LAYERS in scripts/layers.ts)']);
  });

  it('places generated code with the layer that uses it', () => {
    const report = checkLayers(
      world({
        'src/generated/libvirt/enums.ts': 'export const E = 1;',
        'src/generated/index.ts': 'export type Q = 1;',
        'src/libvirt/domain.ts': "import { E } from '../generated/libvirt/enums.js';",
        'src/qmp/client.ts': "import type { Q } from '../generated/index.js';",
      }),
    );
    expect(describeProblems(report)).toEqual(['src/qmp/client.ts (qmp) imports src/generated/index.ts (schema) [type only]: points up']);
    expect(report.table.get('src/libvirt')).toEqual(new Set(['src/generated/libvirt']));
  });

  it('resolves a folder import to its index.ts', () => {
    const report = checkLayers(world({ 'src/qmp/index.ts': "import '../hybrid';", 'src/hybrid/index.ts': '' }));
    expect(report.upward.map((v) => v.edge.to)).toEqual(['src/hybrid/index.ts']);
  });
});
