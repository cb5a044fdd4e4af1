/**
 * The virsh verbs of `libqemu` as spawned processes against a real private libvirtd and one tiny TCG
 * guest (qcow2 disk on virtio-scsi, an IDE CD-ROM, a balloon, a VGA display, room for a second vCPU, serial
 * console on a pty): list, define, dumpxml, attach/detach/update-device, domstats, setvcpus, setmem,
 * screenshot, snapshots, console, reset, undefine.
 */
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor, type Guest } from '../../src/hybrid/index.js';
import { startPrivateLibvirtd, tinyGuestXml, type PrivateLibvirtd } from '../../src/testing/index.js';
import { CliProcess, runCli } from './run-cli.js';
import { qcow2Image, scsiDisk, SCSI_CONTROLLER_XML } from '../harness/disks.js';

let lv: PrivateLibvirtd;
let hv: Hypervisor;
const NAME = 'cv1';
const SLOW = { timeout: 300_000 };
const cli = (...args: string[]) => runCli(['-c', lv.uri, ...args], { timeoutMs: 150_000 });

function file(name: string, text: string): string {
  const path = join(lv.base, name);
  writeFileSync(path, text);
  return path;
}

/** A raw file the guest's QEMU (running as the daemon's user) can open as a CD-ROM medium. */
function medium(name: string): string {
  const path = join(lv.base, name);
  writeFileSync(path, Buffer.alloc(1 << 20));
  chownSync(path, lv.uid, lv.uid);
  return path;
}

const cdrom = (source?: string): string =>
  `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>${source ? `<source file='${source}'/>` : ''}<target dev='hdc' bus='ide'/><readonly/></disk>`;

async function qmpOf<T>(guest: Guest, command: 'query-block' | 'query-cpus-fast' | 'query-balloon'): Promise<T> {
  const qmp = await guest.qmp();
  try {
    return (await qmp.execute(command)) as T;
  } finally {
    await qmp.close();
  }
}

async function blockFiles(guest: Guest): Promise<string[]> {
  const qmp = await guest.qmp();
  try {
    return ((await qmp.execute('query-block')) as { inserted?: { file?: string } }[]).map((d) => d.inserted?.file ?? '').filter(Boolean);
  } finally {
    await qmp.close();
  }
}

beforeAll(async () => {
  lv = await startPrivateLibvirtd({ prefix: 'lqvsh' });
  hv = await Hypervisor.connect(lv.uri, { onTaint: () => undefined });
}, 120_000);
afterAll(async () => {
  await hv?.close();
  await lv?.stop();
});

describe('virsh verbs of libqemu', SLOW, () => {
  it('define, list (--all), start, dumpxml', async () => {
    const devices = [
      `    ${SCSI_CONTROLLER_XML}`,
      `    ${scsiDisk(qcow2Image(lv, 'root.qcow2'), 'sda')}`,
      `    ${cdrom(medium('first.iso'))}`,
      "    <serial type='pty'><target port='0'/></serial>",
      "    <console type='pty'><target type='serial' port='0'/></console>",
    ].join('\n');
    const guestXml = tinyGuestXml({ name: NAME, memoryMiB: 128 })
      .replace('<vcpu>1</vcpu>', "<vcpu placement='static' current='1'>2</vcpu>")
      .replace("<memballoon model='none'/>", "<memballoon model='virtio'/>")
      .replace("<video><model type='none'/></video>", "<video><model type='vga'/></video>")
      .replace('  </devices>', `${devices}\n  </devices>`);
    const xmlFile = file('cv1.xml', guestXml);
    expect(await cli('define', xmlFile)).toMatchObject({ code: 0, stdout: `Domain '${NAME}' defined from ${xmlFile}\n` });

    expect((await cli('list')).stdout).toBe(' Id   Name   State\n');
    expect((await cli('list', '--all')).stdout).toMatch(/^ Id\s+Name\s+State\n -\s+cv1\s+shut off\n$/);
    expect((await cli('start', NAME)).code).toBe(0);
    const running = await cli('--json', 'list');
    expect(JSON.parse(running.stdout)).toEqual({ id: expect.any(Number), name: NAME, uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), state: 'running' });
    expect((await cli('list', '--name')).stdout).toBe(`${NAME}\n`);

    const dump = await cli('dumpxml', NAME);
    expect(dump.code).toBe(0);
    expect(dump.stdout).toMatch(/^<domain type='qemu' id='\d+'>/); // live XML: has the id
    const inactive = await cli('--json', 'dumpxml', NAME, '--inactive');
    const { xml } = JSON.parse(inactive.stdout) as { xml: string };
    expect(xml).toContain(`<name>${NAME}</name>`);
    expect(xml).toMatch(/^<domain type='qemu'>/); // the definition: no live id
  });

  it('attach-device / detach-device --live plug a qcow2 disk QEMU sees', async () => {
    const guest = await hv.guest(NAME);
    const path = qcow2Image(lv, 'hot.qcow2');
    const disk = file('disk.xml', scsiDisk(path, 'sdb'));
    expect(await cli('attach-device', NAME, disk, '--live')).toMatchObject({ code: 0, stdout: 'Device attached successfully\n' });
    expect(await blockFiles(guest)).toContain(path);
    expect(await guest.xml({ inactive: true })).not.toContain(path); // --live only
    expect(await cli('--json', 'detach-device', NAME, disk)).toMatchObject({ code: 0 }); // default --current: the running guest
    expect(await blockFiles(guest)).not.toContain(path);
    // bad input: exit 1 with a readable message
    const missing = await cli('attach-device', NAME, join(lv.base, 'nope.xml'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*nope\.xml/);
    expect((await cli('attach-device', NAME, disk, '--current', '--live')).code).toBe(1);
  });

  it('domstats prints libvirt\'s statistics (readable and --json)', async () => {
    const text = await cli('domstats', NAME);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Domain: 'cv1'\n {2}state\.state=1\n/);
    expect(text.stdout).toMatch(/\n {2}block\.\d\.name=sda\n/);
    const json = await cli('--json', 'domstats');
    const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { guest: string; stats: Record<string, unknown> });
    expect(rows).toEqual([{ guest: NAME, stats: expect.objectContaining({ 'state.state': 1, 'vcpu.current': 1 }) }]);
  });

  it('snapshot-create (from a file and with defaults), snapshot-list, snapshot-revert, snapshot-delete', async () => {
    const snapXml = file('snap.xml', '<domainsnapshot><name>cs1</name></domainsnapshot>');
    expect(await cli('snapshot-create', NAME, snapXml)).toMatchObject({ code: 0, stdout: `Domain snapshot cs1 created from '${snapXml}'\n` });
    const auto = await cli('--json', 'snapshot-create', NAME);
    const autoName = (JSON.parse(auto.stdout) as { snapshot: string }).snapshot;
    expect(autoName).toMatch(/^\d+$/); // libvirt names it after the time
    const table = await cli('snapshot-list', NAME);
    const [header, ...lines] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ Name\s+Creation Time\s+State$/);
    expect(lines.sort()).toEqual([
      expect.stringMatching(new RegExp(`^ ${autoName} \\(current\\)\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\+0000\\s+running$`)),
      expect.stringMatching(/^ cs1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\s+running$/),
    ]);
    await hv.guest(NAME).then((g) => g.suspend());
    expect(await cli('snapshot-revert', NAME, 'cs1')).toMatchObject({ code: 0, stdout: 'Domain reverted to snapshot cs1\n' });
    expect((await hv.guest(NAME).then((g) => g.state())).state).toBe('running');
    expect((await cli('snapshot-delete', NAME, '--snapshotname', autoName)).code).toBe(0);
    expect((await cli('snapshot-delete', NAME, 'cs1')).code).toBe(0);
    expect((await cli('snapshot-list', NAME, '--name')).stdout).toBe('');
    const which = await cli('snapshot-revert', NAME);
    expect(which.code).toBe(1);
    expect(which.stderr).toMatch(/which snapshot/);
  });

  it('console attaches to the serial console and leaves on Ctrl-]; the guest keeps running', async () => {
    const p = new CliProcess(['-c', lv.uri, 'console', NAME]);
    try {
      await p.waitFor(/Escape character is \^\]/, 'stderr', 60_000);
      p.child.stdin!.write('\n');
      p.child.stdin!.write(Buffer.from([0x1d]));
      expect(await p.exited).toBe(0);
    } finally {
      await p.stop('SIGKILL');
    }
    expect((await hv.guest(NAME).then((g) => g.state())).state).toBe('running');
  });

  it('update-device --live changes and ejects the CD-ROM medium QEMU sees; --force is passed on', async () => {
    const guest = await hv.guest(NAME);
    const cdFiles = async () => (await qmpOf<{ device: string; qdev?: string; inserted?: { file: string } }[]>(guest, 'query-block')).filter((d) => !d.inserted || !d.inserted.file.endsWith('.qcow2')).map((d) => d.inserted?.file ?? '(empty)');
    expect(await cdFiles()).toEqual([join(lv.base, 'first.iso')]);
    const second = medium('second.iso');
    expect(await cli('update-device', NAME, file('cd2.xml', cdrom(second)), '--live')).toMatchObject({ code: 0, stdout: 'Device updated successfully\n' });
    expect(await cdFiles()).toEqual([second]);
    expect(await guest.xml({ inactive: true })).toContain('first.iso'); // --live only
    const eject = await cli('--json', 'update-device', NAME, file('cd0.xml', cdrom()), '--force');
    expect(JSON.parse(eject.stdout)).toEqual({ guest: NAME, action: 'update-device', live: true, config: false, force: true });
    expect(await cdFiles()).toEqual(['(empty)']);
    const bad = await cli('update-device', NAME, file('bad.xml', "<disk type='file' device='cdrom'><target dev='hdd' bus='ide'/></disk>"), '--live');
    expect(bad.code).toBe(3); // libvirt: no such device
    expect(bad.stderr).toMatch(/hdd/);
  });

  it('setvcpus --live hot-plugs a vCPU QEMU sees; --config changes only the definition', async () => {
    const guest = await hv.guest(NAME);
    expect(await qmpOf<unknown[]>(guest, 'query-cpus-fast')).toHaveLength(1);
    expect(await cli('setvcpus', NAME, '2', '--live')).toMatchObject({ code: 0, stdout: '' }); // quiet, like virsh
    expect(await qmpOf<unknown[]>(guest, 'query-cpus-fast')).toHaveLength(2);
    expect(await guest.xml({ inactive: true })).toContain("<vcpu placement='static' current='1'>2</vcpu>");
    const config = await cli('--json', 'setvcpus', NAME, '2', '--config');
    expect(JSON.parse(config.stdout)).toEqual({ guest: NAME, action: 'setvcpus', count: 2, live: false, config: true });
    expect(await guest.xml({ inactive: true })).toContain("<vcpu placement='static'>2</vcpu>");
    const tooMany = await cli('setvcpus', NAME, '3', '--live');
    expect(tooMany.code).toBe(3); // above <vcpu>'s maximum: libvirt refuses
    expect(await cli('setvcpus', NAME, 'two')).toMatchObject({ code: 1, stderr: expect.stringMatching(/"two" is not a vCPU count/) });
    expect((await cli('setvcpus', NAME, '1', '--current', '--config')).code).toBe(1);
  });

  it('setmem takes virsh\'s scaled sizes: --config sets the definition, --live asks the balloon', async () => {
    const guest = await hv.guest(NAME);
    expect(await cli('setmem', NAME, '96M', '--config')).toMatchObject({ code: 0, stdout: '' });
    expect(await guest.xml({ inactive: true })).toContain("<currentMemory unit='KiB'>98304</currentMemory>");
    const live = await cli('--json', 'setmem', NAME, '102400', '--live'); // no unit: KiB
    expect(JSON.parse(live.stdout)).toEqual({ guest: NAME, action: 'setmem', kib: 102400, live: true, config: false });
    // libvirt sends QEMU's balloon command; with no OS to give the memory back only the request is visible
    expect(await qmpOf<{ actual: number }>(guest, 'query-balloon')).toMatchObject({ actual: expect.any(Number) });
    expect((await cli('setmem', NAME, '1G', '--live')).code).toBe(3); // above the 128 MiB maximum
    expect(await cli('setmem', NAME, '12X')).toMatchObject({ code: 1, stderr: expect.stringMatching(/"12X" is not a size/) });
  });

  it('screenshot writes the display to --file, or to virsh\'s GUEST-DATE name in the working directory', async () => {
    const out = join(lv.base, 'shot.png');
    const named = await cli('screenshot', NAME, '--file', out);
    expect(named.code).toBe(0);
    const mime = /^Screenshot saved to .*shot\.png, with type of (image\/png|image\/x-portable-pixmap)\n$/.exec(named.stdout)?.[1];
    expect(mime).toBeDefined();
    const data = readFileSync(out);
    if (mime === 'image/png') expect(data.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    else expect(data.subarray(0, 3).toString('latin1')).toBe('P6\n');
    const dir = join(lv.base, 'shots');
    mkdirSync(dir);
    const auto = await runCli(['-c', lv.uri, '--json', 'screenshot', NAME, '--screen', '0'], { timeoutMs: 150_000, cwd: dir });
    expect(auto.code).toBe(0);
    const { file: written } = JSON.parse(auto.stdout) as { file: string };
    expect(written).toMatch(new RegExp(`^${NAME}-\\d{4}-\\d\\d-\\d\\d-\\d\\d:\\d\\d:\\d\\d\\.(png|ppm)$`));
    expect(readdirSync(dir)).toEqual([written]);
    expect((await cli('screenshot', NAME, '--screen', 'x')).code).toBe(1);
  });

  it('reset, then undefine leaves the running guest transient', async () => {
    expect(await cli('reset', NAME)).toMatchObject({ code: 0, stdout: `Domain '${NAME}' was reset\n` });
    expect(await cli('undefine', NAME)).toMatchObject({ code: 0, stdout: `Domain '${NAME}' has been undefined\n` });
    const guest = await hv.guest(NAME);
    expect(await guest.isRunning()).toBe(true);
    await guest.destroy();
    expect((await cli('list', '--all')).stdout).toBe(' Id   Name   State\n');
  });
});
