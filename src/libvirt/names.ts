/**
 * libqemu's words for libvirt's numbers (domain states, their reasons, lifecycle events and details),
 * derived from the generated enums: VIR_DOMAIN_RUNNING_FROM_SNAPSHOT → 'from-snapshot'.
 */
import {
  virConnectDomainEventAgentLifecycleReasonNames,
  virConnectDomainEventAgentLifecycleStateNames,
  virDomainBlockedReasonNames,
  virDomainCrashedReasonNames,
  virDomainEventCrashedDetailTypeNames,
  virDomainEventDefinedDetailTypeNames,
  virDomainEventPMSuspendedDetailTypeNames,
  virDomainEventResumedDetailTypeNames,
  virDomainEventShutdownDetailTypeNames,
  virDomainEventStartedDetailTypeNames,
  virDomainEventStoppedDetailTypeNames,
  virDomainEventSuspendedDetailTypeNames,
  type virDomainEventType,
  virDomainEventTypeNames,
  virDomainEventUndefinedDetailTypeNames,
  virDomainNostateReasonNames,
  virDomainPMSuspendedReasonNames,
  virDomainPausedReasonNames,
  virDomainRunningReasonNames,
  virDomainShutdownReasonNames,
  virDomainShutoffReasonNames,
  type virDomainState,
} from '../generated/libvirt/enums.js';

type Word<K, P extends string> = K extends `${P}${infer R}` ? (R extends 'LAST' ? never : Lowercase<R>) : never;

export type DomainStateName = Word<keyof typeof virDomainState, 'VIR_DOMAIN_'>;
export type LifecycleEventName = Word<keyof typeof virDomainEventType, 'VIR_DOMAIN_EVENT_'>;

/** VIR_DOMAIN_RUNNING_FROM_SNAPSHOT with prefix VIR_DOMAIN_RUNNING_ → 'from-snapshot'. */
export function stateWord(name: string, prefix: string): string {
  return name.slice(prefix.length).toLowerCase().replace(/_/g, '-');
}

/** Per domain state: the enum naming its reasons, and that enum's prefix. */
export const REASON_TYPES: Readonly<Record<string, { names: Readonly<Record<number, string>>; prefix: string }>> = {
  nostate: { names: virDomainNostateReasonNames, prefix: 'VIR_DOMAIN_NOSTATE_' },
  running: { names: virDomainRunningReasonNames, prefix: 'VIR_DOMAIN_RUNNING_' },
  blocked: { names: virDomainBlockedReasonNames, prefix: 'VIR_DOMAIN_BLOCKED_' },
  paused: { names: virDomainPausedReasonNames, prefix: 'VIR_DOMAIN_PAUSED_' },
  shutdown: { names: virDomainShutdownReasonNames, prefix: 'VIR_DOMAIN_SHUTDOWN_' },
  shutoff: { names: virDomainShutoffReasonNames, prefix: 'VIR_DOMAIN_SHUTOFF_' },
  crashed: { names: virDomainCrashedReasonNames, prefix: 'VIR_DOMAIN_CRASHED_' },
  pmsuspended: { names: virDomainPMSuspendedReasonNames, prefix: 'VIR_DOMAIN_PMSUSPENDED_' },
};

/** Per lifecycle event: the enum naming its details. */
const DETAIL_TYPES: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  defined: virDomainEventDefinedDetailTypeNames,
  undefined: virDomainEventUndefinedDetailTypeNames,
  started: virDomainEventStartedDetailTypeNames,
  suspended: virDomainEventSuspendedDetailTypeNames,
  resumed: virDomainEventResumedDetailTypeNames,
  stopped: virDomainEventStoppedDetailTypeNames,
  shutdown: virDomainEventShutdownDetailTypeNames,
  pmsuspended: virDomainEventPMSuspendedDetailTypeNames,
  crashed: virDomainEventCrashedDetailTypeNames,
};

export function lifecycleEventName(event: number): LifecycleEventName {
  const name = virDomainEventTypeNames[event];
  return (name ? stateWord(name, 'VIR_DOMAIN_EVENT_') : `unknown-${event}`) as LifecycleEventName;
}

export function lifecycleDetailName(event: LifecycleEventName, detail: number): string {
  const name = DETAIL_TYPES[event]?.[detail];
  return name ? stateWord(name, `VIR_DOMAIN_EVENT_${event.toUpperCase()}_`) : `unknown-${detail}`;
}

/** The agent-lifecycle event's state and reason as words: STATE_CONNECTED → 'connected', REASON_DOMAIN_STARTED → 'domain-started'. */
export function agentLifecycleWords(state: number, reason: number): { state: string; reason: string } {
  const s = virConnectDomainEventAgentLifecycleStateNames[state];
  const r = virConnectDomainEventAgentLifecycleReasonNames[reason];
  return {
    state: s ? stateWord(s, 'VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_') : `unknown-${state}`,
    reason: r ? stateWord(r, 'VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_REASON_') : `unknown-${reason}`,
  };
}
