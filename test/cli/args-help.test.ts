/**
 * The pieces under the CLI, in-process: argument typing and Tab completion against a real QEMU's
 * schema, shell word splitting, exit-code mapping, and `--help` on every command.
 */
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { convert, parseCommandArgs, splitWords } from '../../src/cli/args.js';
import { exitCodeFor, ExitCode } from '../../src/cli/exit-codes.js';
import { buildProgram, main } from '../../src/cli/main.js';
import { complete, parseHmpHelp } from '../../src/cli/shell/completer.js';
import { PolicyError } from '../../src/hybrid/errors.js';
import { LibvirtError, LibvirtTimeoutError } from '../../src/libvirt/errors.js';
import { POLICY_ERROR_CLASS } from '../../src/proxy/errors.js';
import { QmpClosedError, QmpCommandError, QmpTimeoutError } from '../../src/qmp/errors.js';
import { SchemaError } from '../../src/schema/errors.js';
import { fetchSchemaFromBinary } from '../../src/schema/fetch.js';
import type { SchemaModel } from '../../src/schema/model.js';

let model: SchemaModel;
beforeAll(async () => {
  model = await fetchSchemaFromBinary('qemu-system-x86_64');
});

describe('arguments typed by the schema', () => {
  it('types booleans, integers, enums, nested members and arrays', () => {
    expect(parseCommandArgs(['name=net0', 'up=off'], model.command('set_link'))).toEqual({ name: 'net0', up: false });
    expect(parseCommandArgs(['value=1048576'], model.command('migrate_set_speed') ?? model.command('balloon'))).toEqual({ value: 1048576 });
    // a flat union: the tag picks the branch whose member types apply
    expect(parseCommandArgs(['driver=null-co', 'node-name=n0', 'size=4096', 'read-zeroes=yes'], model.command('blockdev-add'))).toEqual({
      driver: 'null-co',
      'node-name': 'n0',
      size: 4096,
      'read-zeroes': true,
    });
    expect(parseCommandArgs(['path=/machine', 'property=type'], model.command('qom-get'))).toEqual({ path: '/machine', property: 'type' });
    expect(parseCommandArgs(['{"path": "/machine", "property": "type"}'], model.command('qom-get'))).toEqual({ path: '/machine', property: 'type' });
    expect(parseCommandArgs([], model.command('query-status'))).toBeUndefined();
    // nested member paths build objects
    expect(parseCommandArgs(['driver=null-co', 'node-name=n1', 'cache.direct=false'], model.command('blockdev-add'))).toMatchObject({ cache: { direct: false } });
  });

  it('reports values the schema cannot take as SchemaErrors naming the member', () => {
    expect(() => parseCommandArgs(['name=x', 'up=perhaps'], model.command('set_link'))).toThrow(SchemaError);
    expect(() => parseCommandArgs(['name=x', 'up=perhaps'], model.command('set_link'))).toThrow(/set_link\.up: expected a boolean/);
    expect(() => parseCommandArgs(['driver=null-co', 'node-name=n', 'size=big'], model.command('blockdev-add'))).toThrow(/blockdev-add\.size: expected an integer/);
    expect(() => parseCommandArgs(['oops'], model.command('set_link'))).toThrow(/expected key=value/);
    expect(() => parseCommandArgs(['name=a', 'name=b'], model.command('set_link'))).toThrow(/given twice/);
    expect(() => parseCommandArgs(['{"a": '], model.command('set_link'))).toThrow(/not valid JSON/);
  });

  it('guesses JSON where there is no schema, and splits arrays on commas', () => {
    expect(convert('12', undefined, 'x')).toBe(12);
    expect(convert('{"a":1}', undefined, 'x')).toEqual({ a: 1 });
    expect(convert('plain', undefined, 'x')).toBe('plain');
    const arrayOfStr = [...model.types.values()].find((t) => t.kind === 'array' && t.element.kind === 'builtin' && t.element.jsonType === 'string');
    expect(convert('a,b', arrayOfStr, 'x')).toEqual(['a', 'b']);
    expect(convert('["a b"]', arrayOfStr, 'x')).toEqual(['a b']);
  });

  it('splits shell lines on spaces but keeps quotes and JSON together', () => {
    expect(splitWords(`qom-get path=/machine property="a b"`)).toEqual(['qom-get', 'path=/machine', 'property=a b']);
    expect(splitWords(`blockdev-add {"driver": "null-co", "node-name": "x y"}`)).toEqual(['blockdev-add', '{"driver": "null-co", "node-name": "x y"}']);
    expect(splitWords(`x a=[1, 2] b='{"k": "}"}'`)).toEqual(['x', 'a=[1, 2]', 'b={"k": "}"}']);
    expect(() => splitWords('x "open')).toThrow(/unterminated/);
    expect(() => splitWords('x {"a": 1')).toThrow(/unbalanced/);
  });
});

describe('shell completion from the schema', () => {
  const src = (mode: 'qmp' | 'hmp' = 'qmp') => ({ mode: () => mode, model: () => model, hmpCommands: () => ['info', 'cont', 'c'] });
  it('completes command names, member names not given yet, and enum/boolean values', () => {
    expect(complete('query-statu', src())).toEqual([['query-status'], 'query-statu']);
    expect(complete('set_link ', src())).toEqual([['name=', 'up='], '']);
    expect(complete('set_link name=x ', src())).toEqual([['up='], '']);
    expect(complete('set_link name=x up=t', src())).toEqual([['up=true'], 'up=t']);
    const [values] = complete('blockdev-add driver=q', src());
    expect(values).toEqual(expect.arrayContaining(['driver=qcow2', 'driver=quorum']));
    expect(complete('.sch', src())).toEqual([['.schema'], '.sch']);
    expect(complete('.schema query-stat', src())[0]).toContain('query-status');
    expect(complete('co', src('hmp'))).toEqual([['cont'], 'co']);
  });

  it('reads HMP command names from HMP help', () => {
    expect(parseHmpHelp('c|cont  -- resume emulation\r\ninfo [subcommand] -- show\r\nq|quit  -- quit\r\n')).toEqual(['c', 'cont', 'info', 'q', 'quit']);
  });
});

describe('exit codes', () => {
  it('maps each failure kind to its own code', () => {
    expect(exitCodeFor(new QmpCommandError('GenericError', 'x', 'stop', 1))).toBe(ExitCode.qmpError);
    expect(exitCodeFor(new QmpCommandError(POLICY_ERROR_CLASS, 'x', 'device_del', 1))).toBe(ExitCode.policy);
    expect(exitCodeFor(new PolicyError({ command: 'quit', reason: 'r', instead: 'virDomainDestroy' }))).toBe(ExitCode.policy);
    expect(exitCodeFor(new SchemaError('a.b', 'bad'))).toBe(ExitCode.schema);
    expect(exitCodeFor(new LibvirtError({ code: 42, domain: 10, message: 'no domain' }))).toBe(ExitCode.libvirt);
    expect(exitCodeFor(new QmpTimeoutError('x', 1))).toBe(ExitCode.connection);
    expect(exitCodeFor(new LibvirtTimeoutError('virDomainGetState', 1000))).toBe(ExitCode.connection);
    expect(exitCodeFor(new QmpClosedError('gone'))).toBe(ExitCode.connection);
    expect(exitCodeFor(new Error('bug'))).toBe(ExitCode.internal);
    expect(new Set(Object.values(ExitCode)).size).toBe(Object.keys(ExitCode).length);
  });
});

describe('--help', () => {
  function capture() {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    return { io: { stdout, stderr }, text: () => out, errors: () => err };
  }

  it('is there on the program and on every command, with exit code 0', async () => {
    const names = buildProgram({ io: capture().io, stdin: process.stdin, exitCode: 0 }).commands.map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['guests', 'exec', 'events', 'shell', 'schema', 'gen', 'start', 'shutdown', 'destroy', 'suspend', 'resume', 'reboot', 'proxy']));
    const top = capture();
    expect(await main(['--help'], { io: top.io })).toBe(0);
    expect(top.text()).toMatch(/Exit codes:\n {2}0 {2}success/);
    for (const name of names) {
      const c = capture();
      expect(await main([name, '--help'], { io: c.io })).toBe(0);
      expect(c.text()).toContain(`Usage: libqemu ${name}`);
    }
  });

  it('answers a usage error with exit code 1 and a pointer to --help', async () => {
    const c = capture();
    expect(await main(['exec'], { io: c.io })).toBe(1);
    expect(c.errors()).toMatch(/missing required argument 'command'[\s\S]*--help/);
    const none = capture();
    expect(await main([], { io: none.io })).toBe(1);
    expect(none.errors()).toContain('Usage: libqemu');
  });
});
