import { InvalidArgumentError } from '../common/errors.js';
import type { ExecuteOptions } from '../qmp/command-map.js';
import type { QmpTransport } from '../qmp/transport.js';
import { QemuClient, type QemuClientOptions } from '../schema/client.js';
import type { FdsetInfo } from './fdset-policy.js';
import type { CommandClassification, OwnershipPolicy, PolicyCallOptions } from './policy.js';

export type QmpRoute = 'monitor' | 'passthrough';

export interface GuestQmpClientOptions extends QemuClientOptions<PolicyCallOptions> {
  /** The guest's name, for errors. */
  guest: string;
  route: QmpRoute;
  policy: OwnershipPolicy;
  /** Called when a command passes that libvirt may complain about (the facade's taint check). */
  onCommandPassed?: (c: CommandClassification) => void;
}

/**
 * The QMP client `guest.qmp()` returns: a QemuClient (typed commands, schema validation, `commands.*`)
 * with the ownership policy plugged in as its first validator, so every entry point (execute, hmp,
 * executeAndWait, commands.*) asks it before anything is sent, and `allowUnsafe` is a typed per-call
 * option. It adds only the guest's name and route and overrides nothing; the route's failures
 * (MonitorDisconnectedError, GuestNotRunningError, LibvirtError) come from its transport as they are.
 */
export class GuestQmpClient extends QemuClient<PolicyCallOptions> {
  readonly route: QmpRoute;
  readonly guestName: string;

  constructor(transport: QmpTransport, options: GuestQmpClientOptions) {
    const { guest, route, policy, onCommandPassed, validators = [], ...client } = options ?? ({} as GuestQmpClientOptions);
    if (typeof policy?.validator !== 'function') throw new InvalidArgumentError('GuestQmpClient: options.policy must be an OwnershipPolicy', { hint: 'use guest.qmp(), which builds the client' });
    // The fd-set rule looks at QEMU's fd sets through this very client (bound once it exists).
    let self: GuestQmpClient | undefined;
    const queryFdsets = async (options: ExecuteOptions) => (await self!.executeUnchecked('query-fdsets', undefined, options)) as FdsetInfo[];
    super(transport, { ...client, validators: [policy.validator(onCommandPassed, { queryFdsets }), ...validators] });
    self = this;
    this.route = route;
    this.guestName = guest;
  }
}
