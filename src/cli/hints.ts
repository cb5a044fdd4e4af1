/**
 * Hints for shell users. The library's errors carry hints for programmers (`hv.guests()`,
 * `guest.qmp({ via: 'passthrough' })`, `callTimeoutMs`); the CLI prints the same advice in terms of
 * its own verbs and flags. Errors the CLI knows get a hint written for the command line; any other
 * hint goes through a table of rewrites from the library's API to the matching verb or flag.
 */
import { LibqemuError } from '../common/errors.js';
import {
  GuestNotFoundError,
  GuestNotRunningError,
  MonitorDisconnectedError,
  MonitorUnavailableError,
  PolicyError,
} from '../hybrid/errors.js';
import { LibvirtError } from '../libvirt/errors.js';
import { QmpClosedError } from '../qmp/errors.js';

/** Where the error happened, so hints can name the guest and the daemon. */
export interface HintContext {
  guest?: string | undefined;
  uri?: string | undefined;
}

const PERMISSION = /EACCES|EPERM|Permission denied|permission denied|access denied|authentication (failed|unavailable)|not authorized/i;

/** The hint to print for this error on the command line, or undefined when it has none. */
export function cliHint(err: unknown, ctx: HintContext = {}): string | undefined {
  const guest = ctx.guest ?? (err as { guest?: unknown }).guest;
  const g = typeof guest === 'string' && guest ? guest : 'GUEST';
  // The message already names libvirt's way; the hint only adds how to opt in.
  if (err instanceof PolicyError) return `to send it anyway (libvirt may then lose track of the guest's state): --allow ${err.allowName}`;
  if (err instanceof GuestNotFoundError) return `list the guests with: libqemu${uriFlag(ctx)} guests (names are case-sensitive)`;
  if (err instanceof GuestNotRunningError) return `start it first: libqemu${uriFlag(ctx)} start ${err.guest}`;
  if (err instanceof MonitorDisconnectedError) return `the command may or may not have run; check with: libqemu${uriFlag(ctx)} guests, and retry once the guest runs again`;
  if (err instanceof MonitorUnavailableError) {
    if (err.reason === 'permission') {
      return `this user may not open the guest's monitor socket (it belongs to QEMU's user): run as root or as QEMU's user, or use --via passthrough`;
    }
    return err.hint === undefined ? undefined : toShell(err.hint, g);
  }
  if (err instanceof LibvirtError && PERMISSION.test(err.message)) return permissionHint(ctx.uri);
  if (err instanceof QmpClosedError && PERMISSION.test(err.message)) {
    return 'this user may not open that socket: check its owner and mode (ls -l), run as root or as the socket\'s owner, or join its group';
  }
  const hint = err instanceof LibqemuError ? err.hint : undefined;
  return hint === undefined ? undefined : toShell(hint, g);
}

/** The error's message for the command line (a policy refusal names libvirt's way in CLI words). */
export function cliMessage(err: unknown, ctx: HintContext = {}): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof PolicyError) return toShell(message, ctx.guest ?? 'GUEST');
  return message;
}

/** EACCES on libvirt's socket, or polkit saying no: who may use which daemon. */
export function permissionHint(uri: string | undefined): string {
  const system = uri === undefined || /\/system\b/.test(uri);
  return system
    ? "this user may not use libvirt's system daemon: run as root (sudo), or add yourself to the group that owns its socket " +
        '(usually libvirt: sudo usermod -aG libvirt $USER, then log in again); or use your own session daemon: -c qemu:///session'
    : "this user may not use that libvirt daemon's socket: check the socket's owner and mode, run as its owner, or join its group";
}

function uriFlag(ctx: HintContext): string {
  return ctx.uri ? ` -c ${ctx.uri}` : '';
}

/** Rewrites of the library's API, as hints name it, to the CLI's verbs and flags. */
const REWRITES: [RegExp, (g: string) => string][] = [
  [/guest\.qmp\(\{ via: '(\w+)' \}\)(?: \(or '(\w+)'\))?/g, () => '--via $1'],
  [/guest\.qmp\(\{ allow: \[([^\]]*)\] \}\)/g, () => '--allow COMMAND,…'],
  [/hv\.defineGuest\(xml, \{ qmpSocket: true \}\)/g, () => 'a second QMP monitor in its domain XML (<qemu:commandline> -qmp unix:PATH,server=on,wait=off)'],
  [/\(in this process, share guest\.qmp\(\)\)/g, () => '(libqemu proxy serves one monitor to many clients)'],
  [/hv\.guests\(\)/g, () => 'libqemu guests'],
  [/conn\.listDomains\(\)/g, () => 'libqemu guests'],
  [/hv\.guest\(name\)/g, () => 'libqemu -d NAME'],
  [/\(?await guest\.start\(\)\)?/g, (g) => `libqemu start ${g}`],
  [/guest\.(start|shutdown|destroy|suspend|resume|reboot|migrate)\(\)/g, (g) => `libqemu $1 ${g}`],
  [/\(?guest\.state\(\)\)?/g, () => 'libqemu guests'],
  [/\(?dom\.state\(\)\)?/g, () => 'libqemu guests'],
  [/raise callTimeoutMs|raise timeoutMs/g, () => 'raise --timeout SECONDS'],
  [/callTimeoutMs|timeoutMs/g, () => '--timeout'],
  [/\{ allowUnsafe: true \}/g, () => '--allow'],
  [/open a new Connection/g, () => 'run the command again'],
  [/the monitorDir option|pass monitorDir pointing at a directory/g, () => 'a monitor directory'],
  [/client\.supports\(\) before calling commands newer than this QEMU/g, () => "list what this QEMU offers: libqemu schema 'PATTERN*'"],
  [/check the arguments against query-qmp-schema/g, () => 'check the arguments: libqemu schema COMMAND'],
];

/** The CLI verbs for the libqemu calls a policy refusal names (src/hybrid/policy-calls.ts); the others have none. */
const CLI_VERBS: Record<string, (g: string) => string> = {
  'guest.attachDevice()': (g) => `libqemu attach-device ${g} FILE`,
  'guest.detachDevice()': (g) => `libqemu detach-device ${g} FILE`,
  'guest.updateDevice()': (g) => `libqemu update-device ${g} FILE`,
  'guest.setMemory()': (g) => `libqemu setmem ${g} SIZE`,
  'guest.snapshots.create()': (g) => `libqemu snapshot-create ${g}`,
  'guest.snapshots.revert()': (g) => `libqemu snapshot-revert ${g} NAME`,
  'guest.snapshots.delete()': (g) => `libqemu snapshot-delete ${g} NAME`,
  'hv.defineGuest()': () => 'libqemu define FILE',
  'guest.destroy()': (g) => `libqemu destroy ${g}`,
  'guest.shutdown()': (g) => `libqemu shutdown ${g}`,
  'guest.start()': (g) => `libqemu start ${g}`,
  'guest.migrate()': (g) => `libqemu migrate ${g}`,
};

/** A library hint in the CLI's words. */
export function toShell(text: string, guest = 'GUEST'): string {
  let out = text.replace(/; in libqemu: (.*)$/m, (_, list: string) => {
    const verbs = [...new Set(list.split(', ').flatMap((c) => CLI_VERBS[c]?.(guest) ?? []))];
    return verbs.length > 0 ? `; with libqemu: ${verbs.join(', ')}` : '';
  });
  for (const [re, to] of REWRITES) out = out.replace(re, (...m: string[]) => to(guest).replace(/\$(\d)/g, (_, i: string) => m[Number(i)] ?? ''));
  return out;
}

/** What a hint for shell users must not contain: calls, option objects, option names of the API. */
export const JAVASCRIPT_IN_HINT = /\b(?:hv|guest|conn|client|qmp|dom|proxy)\.\w+\(|\bawait\b|\{ \w+: |callTimeoutMs|timeoutMs|allowUnsafe|Hypervisor\.connect/;
