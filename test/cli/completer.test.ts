/** HMP completion in the shell, from the help text of a real QEMU: command names, then `info` subcommands. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { complete, parseHmpHelp, parseHmpInfoHelp } from '../../src/cli/shell/completer.js';
import { QmpClient } from '../../src/qmp/index.js';
import { startQemu, type QemuInstance } from '../harness/qemu.js';

let qemu: QemuInstance;
let hmpCommands: string[];
let hmpInfo: string[];

beforeAll(async () => {
  qemu = await startQemu();
  const client = await QmpClient.connect({ path: qemu.qmpPath });
  try {
    hmpCommands = parseHmpHelp(await client.hmp('help'));
    hmpInfo = parseHmpInfoHelp(await client.hmp('help info'));
  } finally {
    await client.close();
  }
});
afterAll(() => qemu?.stop());

describe('HMP completion', () => {
  const source = () => ({ mode: () => 'hmp' as const, model: () => undefined, hmpCommands: () => hmpCommands, hmpInfo: () => hmpInfo });

  it('completes HMP command names', () => {
    expect(complete('inf', source())).toEqual([['info'], 'inf']);
    expect(complete('system_', source())[0]).toEqual(expect.arrayContaining(['system_powerdown', 'system_reset']));
  });

  it('completes info subcommands after "info "', () => {
    expect(hmpInfo).toEqual(expect.arrayContaining(['status', 'version', 'qtree']));
    expect(complete('info statu', source())).toEqual([['status'], 'statu']);
    expect(complete('info ', source())[0]).toEqual(hmpInfo);
    expect(complete('info status x', source())).toEqual([[], 'info status x']);
  });
});
