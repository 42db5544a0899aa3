import type { CycleOptions, CycleResult, CycleTrigger } from './publication-cycle.js';

/** Events named in one audit record; the rest are counted. */
const MAX_AUDITED_EVENTS = 20;

/**
 * The one audit record of a publication cycle (`"audit": true`), for the SIEM: what changed, named
 * as CM knows each key, why the cycle ran, and how it ended. Holds no key material and no secret.
 */
export function auditRecord(triggers: readonly CycleTrigger[], options: CycleOptions, result: CycleResult, store: string): Record<string, unknown> {
  return {
    audit: true,
    event: 'publication',
    outcome: result.outcome,
    failure: result.failure,
    guard: result.guard?.guard,
    reason: describeTriggers(triggers),
    added: result.added,
    removed: result.removed,
    keys: result.keys,
    filesWritten: result.filesWritten,
    filesRemoved: result.filesRemoved,
    ...(result.keptUnreadable !== undefined && result.keptUnreadable.length > 0 && { keptUnreadable: result.keptUnreadable }),
    ...(result.keptUnknownState !== undefined && result.keptUnknownState.length > 0 && { keptUnknownState: result.keptUnknownState }),
    store,
    ...(options.confirmRemoval === true && { override: 'confirm_removal' }),
    ...(result.message !== undefined && { message: result.message }),
  };
}

function describeTriggers(triggers: readonly CycleTrigger[]): Record<string, unknown> {
  const events = triggers.filter((trigger) => trigger.eventId !== undefined);
  return {
    kinds: [...new Set(triggers.map((trigger) => trigger.kind))].sort(),
    requests: triggers.length,
    events: events.slice(0, MAX_AUDITED_EVENTS).map((trigger) => ({ id: trigger.eventId, type: trigger.eventType })),
    ...(events.length > MAX_AUDITED_EVENTS && { eventsNotListed: events.length - MAX_AUDITED_EVENTS }),
  };
}
