import type { CmKey } from '../ciphertrust/cm-key.js';

/**
 * The next moment the published set may change with no change in CM's records: a date a key
 * already carries. Whether CM moves `updatedAt` when such a date passes is unknown (L), so the
 * change check cannot count on `updatedAfter` to see it and keeps this timer:
 * - a Pre-Active key's activationDate (an `enc` key is published from then on);
 * - an Active or Pre-Active key's deactivationDate (an `enc` key leaves; a `sig` key's retention starts);
 * - a Deactivated key's deactivationDate + the retention window (a `sig` key leaves).
 * Only dates after `after` count: a date already past was seen by the read these keys come from.
 */
export function nextDueDate(keys: readonly CmKey[], after: Date, retainDeactivatedMs: number): Date | undefined {
  let next: number | undefined;
  const consider = (date: string | undefined, plusMs = 0): void => {
    if (date === undefined) return;
    const at = Date.parse(date) + plusMs;
    if (Number.isNaN(at) || at <= after.getTime()) return;
    if (next === undefined || at < next) next = at;
  };
  for (const key of keys) {
    if (key.state === 'Pre-Active') consider(key.activationDate);
    if (key.state === 'Pre-Active' || key.state === 'Active') consider(key.deactivationDate);
    if (key.state === 'Deactivated') consider(key.deactivationDate, retainDeactivatedMs);
  }
  return next === undefined ? undefined : new Date(next);
}
