import { LibqemuError } from '../common/errors.js';
import { virErrorDomain, virErrorDomainNames, virErrorNumber, virErrorNumberNames } from '../generated/libvirt/enums.js';

/** libvirt's error as it crosses from a worker thread: plain data, read on the thread that made the call. */
export interface LibvirtErrorData {
  code: number;
  domain: number;
  message: string;
  level?: number;
  /** The libvirt function that failed, e.g. virDomainLookupByName. */
  operation?: string;
}

const HINTS: Record<number, string> = {
  [virErrorNumber.VIR_ERR_INTERNAL_ERROR]: 'if the message says the connection or socket is closed, the daemon went away: open a new Connection',
  [virErrorNumber.VIR_ERR_NO_SUPPORT]: 'this driver does not implement the call (test:///default has no QEMU monitor, events or agent): use a qemu:// URI',
  [virErrorNumber.VIR_ERR_NO_CONNECT]: 'check the URI and that the daemon is running and its socket is reachable',
  [virErrorNumber.VIR_ERR_INVALID_CONN]: 'the connection was closed: open a new Connection',
  [virErrorNumber.VIR_ERR_INVALID_DOMAIN]: 'the domain handle is no longer valid: look the domain up again',
  [virErrorNumber.VIR_ERR_INVALID_ARG]: 'check the arguments against the libvirt documentation of this call',
  [virErrorNumber.VIR_ERR_OPERATION_FAILED]: 'see the message; the daemon or QEMU log (domain log under the daemon\'s cache dir) has details',
  [virErrorNumber.VIR_ERR_XML_ERROR]: 'the XML is not a valid libvirt domain definition: check it with virt-xml-validate or the message\'s line',
  [virErrorNumber.VIR_ERR_DOM_EXIST]: 'a domain with this name or UUID already exists: pick another name or undefine the old one',
  [virErrorNumber.VIR_ERR_OPERATION_DENIED]: 'the connection is read-only or not allowed to do this: open it without readOnly',
  [virErrorNumber.VIR_ERR_XML_DETAIL]: 'the XML has an invalid detail: the message names the element or attribute',
  [virErrorNumber.VIR_ERR_SYSTEM_ERROR]: 'an OS-level error (socket, file, process): check the daemon is running and the path in the message exists',
  [virErrorNumber.VIR_ERR_RPC]: 'the RPC to the daemon failed: the connection may have dropped, open a new Connection',
  [virErrorNumber.VIR_ERR_NO_DOMAIN]: 'no such domain: check the name or UUID with conn.listDomains(); a transient domain disappears when it stops',
  [virErrorNumber.VIR_ERR_AUTH_FAILED]: 'authentication failed: check the socket permissions and the daemon\'s auth settings',
  [virErrorNumber.VIR_ERR_OPERATION_INVALID]: 'the domain is not in a state that allows this (e.g. already running, not paused): check dom.state() first',
  [virErrorNumber.VIR_ERR_CONFIG_UNSUPPORTED]: 'the domain configuration asks for something this host or QEMU cannot do: see the message',
  [virErrorNumber.VIR_ERR_OPERATION_TIMEOUT]: 'the call did not finish in time: raise callTimeoutMs, or check whether QEMU is hung (its monitor stopped answering)',
  [virErrorNumber.VIR_ERR_ARGUMENT_UNSUPPORTED]: 'an argument value is not supported by this driver or QEMU: see the message',
  [virErrorNumber.VIR_ERR_OPERATION_ABORTED]: 'the operation was aborted (e.g. a migration job was cancelled)',
  [virErrorNumber.VIR_ERR_OPERATION_UNSUPPORTED]: 'this operation is not supported for this domain or driver',
  [virErrorNumber.VIR_ERR_AGENT_UNRESPONSIVE]: 'the QEMU guest agent is not responding: is it installed and running in the guest, and is the channel configured?',
  [virErrorNumber.VIR_ERR_AGENT_UNSYNCED]: 'the QEMU guest agent is out of sync: retry after the agent restarted',
};

/** A failed libvirt call: libvirt's own error number, error domain and message, plus what to do about it. */
export class LibvirtError extends LibqemuError {
  /** libvirt's virErrorNumber, e.g. 42. */
  readonly code: number;
  /** The symbolic name of `code`, e.g. 'virErrorNumber.VIR_ERR_NO_DOMAIN'. */
  readonly codeName: string;
  /** libvirt's virErrorDomain (where the error came from), e.g. 10. */
  readonly domain: number;
  /** The symbolic name of `domain`, e.g. 'VIR_FROM_QEMU'. */
  readonly domainName: string;
  /** The libvirt function that failed, when known. */
  readonly operation: string | undefined;

  constructor(data: LibvirtErrorData, options?: { hint?: string; cause?: unknown }) {
    const hint = options?.hint ?? HINTS[data.code] ?? 'see the message; the libvirt daemon log may have details';
    super(data.operation ? `${data.operation}: ${data.message}` : data.message, { hint, cause: options?.cause });
    this.code = data.code;
    this.codeName = virErrorNumberNames[data.code] ?? `VIR_ERR_UNKNOWN_${data.code}`;
    this.domain = data.domain;
    this.domainName = virErrorDomainNames[data.domain] ?? `VIR_FROM_UNKNOWN_${data.domain}`;
    this.operation = data.operation;
  }

  /** The connection is closed (or was lost: `lost` is why) and `operation` cannot run. */
  static closed(operation?: string, lost?: LibvirtError, message = 'the connection is closed'): LibvirtError {
    const data = { code: virErrorNumber.VIR_ERR_INVALID_CONN, domain: virErrorDomain.VIR_FROM_NONE, message: lost ? `the connection was lost: ${lost.message}` : message, ...(operation ? { operation } : {}) };
    return new LibvirtError(data, { hint: 'open a new Connection', ...(lost ? { cause: lost } : {}) });
  }

  /** libvirt's close callback said the daemon connection is gone (`reason`: eof, keepalive, error, client). */
  static disconnected(reason: string): LibvirtError {
    return new LibvirtError(
      { code: virErrorNumber.VIR_ERR_INTERNAL_ERROR, domain: virErrorDomain.VIR_FROM_RPC, message: `connection closed (${reason})`, operation: 'virConnectCloseFunc' },
      { hint: 'the daemon went away or stopped answering: open a new Connection' },
    );
  }

  /** True for the errors libvirt reports when the connection to the daemon is gone. */
  get isConnectionLost(): boolean {
    return isConnectionLostError(this.code, this.message);
  }
}

export function isConnectionLostError(code: number, message: string): boolean {
  if (code === virErrorNumber.VIR_ERR_INVALID_CONN) return true;
  if (code !== virErrorNumber.VIR_ERR_INTERNAL_ERROR && code !== virErrorNumber.VIR_ERR_SYSTEM_ERROR && code !== virErrorNumber.VIR_ERR_RPC) return false;
  return /client socket is closed|keepalive timeout|Cannot recv data|Cannot write data|End of file while reading|connection closed|Broken pipe|Connection reset/i.test(
    message,
  );
}

/**
 * A call exceeded its deadline (`timeoutMs`, else callTimeoutMs). The native call cannot be cancelled: the
 * lane it ran on (one of the connection's libvirt connections) is retired and its socket shut down so the
 * stuck call returns; the connection's other lanes go on serving.
 */
export class LibvirtTimeoutError extends LibvirtError {
  constructor(operation: string, timeoutMs: number) {
    super(
      { code: virErrorNumber.VIR_ERR_OPERATION_TIMEOUT, domain: virErrorDomain.VIR_FROM_NONE, message: `did not return within ${timeoutMs} ms; its lane (one of the connection's libvirt connections) was retired to release it, the others go on`, operation },
      { hint: HINTS[virErrorNumber.VIR_ERR_OPERATION_TIMEOUT] },
    );
  }
}

/**
 * The connection to the daemon was lost while this call was in flight or waiting, or it could not be
 * re-established in time. With reconnection on (the default for a Hypervisor) later calls work again
 * once the connection is back; `cause` holds libvirt's own error when there was one.
 */
export class LibvirtConnectionLostError extends LibvirtError {
  constructor(options: { operation?: string; message: string; cause?: unknown; hint?: string; code?: number; domain?: number }) {
    super(
      { code: options.code ?? virErrorNumber.VIR_ERR_INVALID_CONN, domain: options.domain ?? virErrorDomain.VIR_FROM_RPC, message: options.message, ...(options.operation ? { operation: options.operation } : {}) },
      { hint: options.hint ?? 'the daemon went away; with reconnection on, retry once the connection reports "reconnected", else open a new Connection', cause: options.cause },
    );
  }

  /** Wraps libvirt's own connection-lost error (its code and message kept). */
  static from(err: LibvirtError): LibvirtConnectionLostError {
    if (err instanceof LibvirtConnectionLostError) return err;
    return new LibvirtConnectionLostError({ code: err.code, domain: err.domain, message: err.operation ? err.message.slice(err.operation.length + 2) : err.message, cause: err, ...(err.operation ? { operation: err.operation } : {}) });
  }

  override get isConnectionLost(): boolean {
    return true;
  }
}
