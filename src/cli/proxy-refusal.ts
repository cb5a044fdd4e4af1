/**
 * How `libqemu proxy` words a policy refusal for its clients: a socat or qmp-shell user can only restart
 * the proxy, so the reply names the CLI's --allow flag, not a library call. A module of its own because
 * the passthrough proxy calls it on its own thread (PassthroughProxyOptions.describeRefusal).
 */
import type { PolicyError } from '../hybrid/errors.js';
import type { RefusalText } from '../proxy/errors.js';
import { cliMessage } from './hints.js';

export function describeRefusal(err: PolicyError, context: { guest?: string } | undefined): RefusalText {
  return {
    message: cliMessage(err, { guest: context?.guest ?? 'GUEST' }),
    hint: `to send it anyway, accepting that libvirt may lose track of this guest's state, restart the proxy with --allow ${err.allowName}`,
  };
}

/** This module, for the proxy's thread to import (the same file type as the running code: .ts from sources). */
export const refusalModule = new URL(`./proxy-refusal${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
