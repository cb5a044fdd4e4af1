import { DOMParser } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { DomainXml, QEMU_XML_NS, findMonitorsInArgs, splitQemuOpts } from '../../src/domain/domain-xml.js';
import { DomainXmlError } from '../../src/domain/errors.js';

const plain = `<domain type='qemu'>
  <name>t1</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
</domain>`;

/** Reads the XML back with a fresh parser, as libvirt would: namespace-aware, no knowledge of our editor. */
function argsOf(xml: string): string[] {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const els = doc.getElementsByTagNameNS(QEMU_XML_NS, 'arg');
  return Array.from({ length: els.length }, (_, i) => els.item(i)!.getAttribute('value') ?? '');
}

describe('DomainXml: second QMP monitor in <qemu:commandline>', () => {
  it('adds -qmp unix:PATH with the QEMU namespace declared on <domain>', () => {
    const dx = DomainXml.parse(plain);
    expect(dx.monitorSockets()).toEqual([]);
    dx.addMonitorSocket('/tmp/q/t1.qmp');
    const out = dx.toString();
    expect(out).toContain(`xmlns:qemu="${QEMU_XML_NS}"`);
    expect(out.match(/xmlns:qemu=/g)).toHaveLength(1);
    expect(argsOf(out)).toEqual(['-qmp', 'unix:/tmp/q/t1.qmp,server=on,wait=off']);
    expect(DomainXml.parse(out).monitorSockets()).toEqual([{ path: '/tmp/q/t1.qmp', form: 'qmp' }]);
  });

  it('escapes quotes, ampersands, angle brackets and spaces in names and paths; commas per QemuOpts', () => {
    const name = `it's "a" <guest> & more`;
    const xml = `<domain type='qemu'><name>${name.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</name></domain>`;
    const dx = DomainXml.parse(xml);
    expect(dx.name).toBe(name);
    const path = `/tmp/my dir/it's "q" & <x>,y.sock`;
    dx.addMonitorSocket(path);
    const out = dx.toString();
    // well-formed, and the attribute round-trips exactly
    expect(argsOf(out)).toEqual(['-qmp', `unix:/tmp/my dir/it's "q" & <x>,,y.sock,server=on,wait=off`]);
    expect(out).toContain('&amp;');
    expect(out).not.toMatch(/value="[^"]*<x>/);
    const back = DomainXml.parse(out);
    expect(back.name).toBe(name);
    expect(back.monitorSockets()).toEqual([{ path, form: 'qmp' }]);
  });

  it('reuses an existing <qemu:commandline> and a non-default prefix for the namespace', () => {
    const xml = `<domain type='qemu' xmlns:q='${QEMU_XML_NS}'><name>x</name><q:commandline><q:arg value='-no-hpet'/></q:commandline></domain>`;
    const dx = DomainXml.parse(xml);
    dx.addMonitorSocket('/run/a.sock', { form: 'chardev' });
    const out = dx.toString();
    expect(out).not.toContain('xmlns:qemu');
    expect(out.match(/commandline>/g)).toHaveLength(2); // one open + one close tag
    expect(argsOf(out)).toEqual(['-no-hpet', '-chardev', 'socket,id=libqemu-qmp,path=/run/a.sock,server=on,wait=off', '-mon', 'chardev=libqemu-qmp,mode=control']);
    expect(DomainXml.parse(out).monitorSockets()).toEqual([{ path: '/run/a.sock', form: 'chardev', chardevId: 'libqemu-qmp' }]);
  });

  it('does not take the prefix "qemu" when it is bound to another namespace', () => {
    const xml = `<domain type='qemu' xmlns:qemu='urn:other'><name>x</name></domain>`;
    const dx = DomainXml.parse(xml);
    dx.addMonitorSocket('/run/b.sock');
    const out = dx.toString();
    expect(out).toContain(`xmlns:qemu2="${QEMU_XML_NS}"`);
    expect(argsOf(out)).toEqual(['-qmp', 'unix:/run/b.sock,server=on,wait=off']);
  });

  it('refuses a second monitor on the same path, relative paths and over-long paths', () => {
    const dx = DomainXml.parse(plain);
    dx.addMonitorSocket('/tmp/a.sock');
    expect(() => dx.addMonitorSocket('/tmp/a.sock')).toThrow(DomainXmlError);
    expect(() => dx.addMonitorSocket('rel.sock')).toThrow(InvalidArgumentError);
    expect(() => dx.addMonitorSocket('/' + 'x'.repeat(200))).toThrow(/at most 107/);
  });

  it('finds both monitor forms, ignores HMP (-mon without mode=control) and non-unix -qmp', () => {
    expect(
      findMonitorsInArgs([
        '-qmp', 'tcp:127.0.0.1:4444,server=on',
        '--qmp', 'unix:/a,,b.sock,server=on,wait=off',
        '-chardev', 'socket,id=hmp,path=/h.sock,server=on',
        '-mon', 'chardev=hmp',
        '-chardev', 'socket,id=c2,path=/c2.sock,server=on,wait=off',
        '-mon', 'chardev=c2,mode=control',
        '-qmp', 'unix:path=/explicit.sock',
      ]),
    ).toEqual([
      { path: '/a,b.sock', form: 'qmp' },
      { path: '/explicit.sock', form: 'qmp' },
      { path: '/c2.sock', form: 'chardev', chardevId: 'c2' },
    ]);
    expect(splitQemuOpts('a=1,,2,b')).toEqual(['a=1,2', 'b']);
  });

  it('rewrites a monitor path (migration to another directory) in both forms', () => {
    const dx = DomainXml.parse(plain);
    dx.addMonitorSocket('/src/g,1.sock');
    dx.addMonitorSocket('/src/g2.sock', { form: 'chardev' });
    expect(dx.replaceMonitorSocketPath('/src/g,1.sock', '/dst/g,1.sock')).toBe(true);
    expect(dx.replaceMonitorSocketPath('/src/g2.sock', '/dst/g2.sock')).toBe(true);
    expect(dx.replaceMonitorSocketPath('/nope', '/dst/x')).toBe(false);
    expect(DomainXml.parse(dx.toString()).monitorSockets().map((m) => m.path)).toEqual(['/dst/g,1.sock', '/dst/g2.sock']);
  });

  it('adds a UUID after <name> when the domain has none, keeps an existing one', () => {
    const dx = DomainXml.parse(plain);
    const uuid = dx.ensureUuid();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(DomainXml.parse(dx.toString()).uuid).toBe(uuid);
    expect(dx.toString()).toMatch(/<name>t1<\/name><uuid>/);
    expect(dx.ensureUuid()).toBe(uuid);
  });

  it('rejects malformed XML and non-domain roots with typed errors', () => {
    expect(() => DomainXml.parse('<domain><name>x</domain>')).toThrow(DomainXmlError);
    expect(() => DomainXml.parse('<network/>')).toThrow(/root element/);
    expect(() => DomainXml.parse('')).toThrow(InvalidArgumentError);
  });
});
