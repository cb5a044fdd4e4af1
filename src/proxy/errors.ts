import { LibqemuError } from '../common/errors.js';
import { PolicyError } from '../hybrid/errors.js';
import { QmpCommandError, QmpTimeoutError } from '../qmp/errors.js';

/** The proxy could not start or serve (listen path, permissions, backend). */
export class ProxyError extends LibqemuError {}

/**
 * QMP error class of the reply a proxy client gets when the ownership policy refuses its command. QMP
 * clients print class and desc; desc names the libvirt API to use instead and how to opt in.
 */
export const POLICY_ERROR_CLASS = 'LibqemuPolicyRefused';

/** A policy refusal in the words of whoever started the proxy: what was refused and how to opt in. */
export interface RefusalText {
  message: string;
  hint: string | undefined;
}

export interface QmpErrorBody {
  class: string;
  desc: string;
}

/** What a proxy client is told when its command failed on the way: QEMU's own error, or ours in QMP's shape. */
export function toQmpError(err: unknown, describeRefusal?: (err: PolicyError) => RefusalText): QmpErrorBody {
  if (err instanceof QmpCommandError) return { class: err.errorClass, desc: err.desc };
  if (err instanceof PolicyError) {
    const { message, hint } = describeRefusal ? describeRefusal(err) : { message: err.message, hint: err.hint };
    return { class: POLICY_ERROR_CLASS, desc: `${message}; ${hint ?? ''}`.replace(/; $/, '') };
  }
  // Anything else (the guest's monitor went away, the guest is not running, a libvirt error on the
  // passthrough route) is GenericError, as QEMU reports failures it has no class for; desc says what.
  if (err instanceof QmpTimeoutError) return { class: 'GenericError', desc: `libqemu proxy: ${err.message}` };
  return { class: 'GenericError', desc: `libqemu proxy: ${err instanceof Error ? err.message : String(err)}` };
}
