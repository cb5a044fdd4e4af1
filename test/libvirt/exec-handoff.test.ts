/**
 * The executor hand-off between the main thread and a connection's worker thread, on the paths ordinary
 * calls do not take: large requests and replies, thousands of calls queued at once (order and results),
 * arguments that cannot cross threads, and the process lifetime rules (a call in flight holds the process,
 * an idle connection does not), against libvirt's in-process test:///default driver.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Executor } from '../../src/libvirt/executor.js';
import { Connection } from '../../src/libvirt/index.js';
import { runtime } from '../../src/libvirt/runtime.js';
import { tinyGuestXml } from '../../src/testing/private-libvirtd.js';

/** Sizes well past anything the hand-off might carry inline or buffer per call. */
const BIG = 256 * 1024;


describe('executor hand-off (test:///default)', () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await Connection.open('test:///default');
  });
  afterAll(async () => {
    await conn?.close();
  });

  it('carries a large request and reply, in order with small calls', async () => {
    const description = 'd'.repeat(BIG);
    const xml = tinyGuestXml({ name: 'handoff-big' }).replace('</name>', `</name><description>${description}</description>`);
    const [dom, version] = await Promise.all([conn.defineXML(xml), conn.libVersion()]);
    expect(version.major).toBe(9);
    try {
      const [small, big, name] = await Promise.all([conn.hostname(), dom.getXMLDesc(), dom.getName()]);
      expect(small).toMatch(/\S/);
      expect(big.length).toBeGreaterThan(BIG);
      expect(big).toContain(description);
      expect(name).toBe('handoff-big');
    } finally {
      await dom.undefine();
    }
  });

  it('settles each of 6,000 concurrent calls with its own result (spread over the lanes)', async () => {
    const dom = await conn.lookupDomain('test');
    const n = 6000;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => (i % 3 === 2 ? dom.getName() : i % 3 === 1 ? dom.getID() : dom.getXMLDesc())));
    results.forEach((v, i) => {
      if (i % 3 === 2) expect(v).toBe('test');
      else if (i % 3 === 1) expect(v).toBe(1);
      else expect(v).toMatch(/^<domain type='test'/);
    });
  });

  it('one executor settles 6,000 queued calls in the order they were made, each with its own result', async () => {
    const ex = await Executor.create();
    try {
      const opened = await ex.call('open', ['test:///default', false]);
      const ref = (await ex.call('invoke', ['virDomainLookupByName', [opened.conn, 'test']])) as { ptr: bigint };
      const settled: number[] = [];
      const results = await Promise.all(
        Array.from({ length: 6000 }, (_, i) =>
          ex.call('invoke', [i % 2 ? 'virDomainGetName' : 'virDomainGetXMLDesc', i % 2 ? [ref.ptr] : [ref.ptr, 0]]).then((v) => {
            settled.push(i);
            return v;
          }),
        ),
      );
      results.forEach((v, i) => expect(v).toMatch(i % 2 ? /^test$/ : /^<domain type='test'/));
      expect(settled).toEqual(Array.from({ length: 6000 }, (_, i) => i));
      await ex.call('close', [opened.conn, [{ cls: 'Domain', ptr: ref.ptr }], runtime.closeCallback]);
    } finally {
      await ex.terminate();
    }
  });

  it('rejects a call whose arguments cannot cross threads, and goes on working', async () => {
    const ex = await Executor.create();
    try {
      await expect(ex.call('noop', [(() => 1) as never] as never)).rejects.toThrow();
      expect(ex.busy).toBe(false);
      await expect(ex.call('noop', [])).resolves.toBeNull();
    } finally {
      await ex.terminate();
    }
    expect(ex.isDead).toBe(true);
    await expect(ex.call('noop', [])).rejects.toThrow();
  });
});

describe('process lifetime', () => {
  const run = (code: string, flags: string[] = []): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', code], { cwd: process.cwd(), encoding: 'utf8', timeout: 30_000 });
  const entry = JSON.stringify(new URL('../../src/libvirt/index.ts', import.meta.url).href);

  it('calls in flight keep the process alive; an idle connection left open does not', () => {
    // An unsettled top-level await would end the process with code 13 if a call in flight did not hold it.
    const r = run(
      `const { Connection } = await import(${entry});
       const conn = await Connection.open('test:///default');
       const dom = await conn.lookupDomain('test');
       let n = 0;
       for (let i = 0; i < 200; i++) n += (await dom.getXMLDesc()).length > 0 ? 1 : 0;
       console.log('calls', n);`,
    );
    expect(r.error).toBeUndefined(); // not killed by the timeout: it exited by itself
    expect(r.stdout).toContain('calls 200');
    expect(r.status).toBe(0);
  });

  it('workers start in a program run with V8 flags and --input-type (Node refuses both in a worker execArgv)', () => {
    const r = run(
      `const { Connection } = await import(${entry});
       const conn = await Connection.open('test:///default');
       console.log('name', await (await conn.lookupDomain('test')).getName());
       await conn.close();`,
      ['--max-old-space-size=512', '--single-threaded-gc', '--stack-size=2000'],
    );
    expect(r.stderr).not.toMatch(/invalid execArgv/);
    expect(r.stdout).toContain('name test');
    expect(r.status).toBe(0);
  });
});
