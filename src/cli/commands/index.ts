/**
 * The registry of `libqemu` subcommands, in the order `--help` lists them. Adding a command is one
 * module in this directory plus one line here.
 */
import type { CliCommandModule } from '../command.js';
import { eventsCommand } from './events.js';
import { execCommand } from './exec.js';
import { genCommand } from './gen.js';
import { guestsCommand } from './guests.js';
import { lifecycleCommands } from './lifecycle.js';
import { consoleCommand } from './console.js';
import { virshDeviceCommands } from './virsh-devices.js';
import { virshDomainCommands } from './virsh-domains.js';
import { virshResourceCommands } from './virsh-resources.js';
import { virshSnapshotCommands } from './virsh-snapshots.js';
import { migrateCommand } from './migrate.js';
import { proxyCommand } from './proxy.js';
import { screenshotCommand } from './screenshot.js';
import { schemaCommand } from './schema.js';
import { shellCommand } from './shell.js';

export const commandModules: readonly CliCommandModule[] = [
  guestsCommand,
  execCommand,
  eventsCommand,
  shellCommand,
  schemaCommand,
  genCommand,
  lifecycleCommands,
  virshDomainCommands,
  virshDeviceCommands,
  virshResourceCommands,
  virshSnapshotCommands,
  consoleCommand,
  screenshotCommand,
  migrateCommand,
  proxyCommand,
];
