/** Argument checks of generated calls on the main thread (src/libvirt/call-args.ts). */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { prepareArgs } from '../../src/libvirt/call-args.js';

const thrown = (fn: () => unknown): InvalidArgumentError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
};

describe('prepareArgs', () => {
  it('passes the object pointer through and checks each tagged argument, the same on every call', () => {
    for (let i = 0; i < 3; i++) {
      expect(prepareArgs('virDomainGetXMLDesc', 'u:flags', [7n, 2])).toEqual([7n, 2]);
      expect(prepareArgs('virDomainOpenConsole', 's?:devName,u:flags', [7n, undefined, 0])).toEqual([7n, null, 0]);
    }
    expect(prepareArgs('virConnectIsAlive', '', [7n])).toEqual([7n]);
  });

  it('names the argument that is wrong, by name from the generated classes or by position', () => {
    expect(thrown(() => prepareArgs('virDomainGetXMLDesc', 'u:flags', [7n, -1])).message).toBe('virDomainGetXMLDesc: flags must be a non-negative 32-bit integer, got -1');
    expect(thrown(() => prepareArgs('virDomainGetState', 'u', [7n, 'x'])).message).toBe('virDomainGetState: argument 1 must be a non-negative 32-bit integer, got "x"');
    expect(thrown(() => prepareArgs('virDomainGetXMLDesc', 'u:flags,u:more', [7n])).message).toMatch(/expects 2 arguments, got 1/);
  });

  it('never echoes what a byte argument held (a secret value given as a string)', () => {
    const secret = 'hunter2-very-secret-value';
    const err = thrown(() => prepareArgs('virSecretSetValue', 'B:value,u:flags', [7n, secret, 0]));
    expect(err.message).toBe('virSecretSetValue: value must be a Buffer or Uint8Array, got a string of 25 characters');
    expect(`${err.message} ${err.hint ?? ''} ${err.stack ?? ''}`).not.toContain('hunter2');
    expect(prepareArgs('virSecretSetValue', 'B:value,u:flags', [7n, Buffer.from(secret), 0])[1]).toEqual(Buffer.from(secret));
  });
});
