import { certificateOf, isCertificateObject } from '../ciphertrust/certificate-material.js';
import { PROTECT_STOP, recogniseState, type CmKey } from '../ciphertrust/cm-key.js';

/**
 * How long after its date a transition CM applies (activation, deactivation) may still be missing
 * from a read: CM's clock may lag ours, or it may apply dates lazily. Within it the date stays due,
 * so the next tick reads again; after it, the hourly ping is the net.
 */
export const CM_TRANSITION_GRACE_MS = 30_000;

/**
 * The next moment the published set may change with no change in CM's records: a date a key
 * already carries. Whether CM moves `updatedAt` when such a date passes is unknown (L), so the
 * change check cannot count on `updatedAfter` to see it and keeps this timer:
 * - a Pre-Active key's activationDate (an `enc` key is published from then on);
 * - an Active or Pre-Active key's deactivationDate (an `enc` key leaves; a `sig` key's retention starts);
 * - a Deactivated key's deactivationDate + the retention window (a `sig` key leaves);
 * - an Active or Pre-Active key's protectStopDate (it enters protect-stop: an `enc` key leaves), and
 *   a protect-stop key's protectStopDate + the retention window (a `sig` key leaves);
 * - a certificate's notBefore and notAfter (its chain is published from the one, dropped at the other).
 * Only dates after the read count: a retention end already past was applied by that read's cycle
 * (same clock). A CM transition whose date passed but whose key still shows the state before it
 * stays due for CM_TRANSITION_GRACE_MS.
 */
export function nextDueDate(keys: readonly CmKey[], readAt: Date, retainDeactivatedMs: number): Date | undefined {
  let next: number | undefined;
  const consider = (date: string | undefined, plusMs: number, graceMs: number): void => {
    if (date === undefined) return;
    const at = Date.parse(date) + plusMs;
    if (Number.isNaN(at) || at <= readAt.getTime() - graceMs) return;
    if (next === undefined || at < next) next = at;
  };
  for (const key of keys) {
    if (isCertificateObject(key)) {
      const certificate = certificateOf(key);
      consider(certificate?.validFromDate.toISOString(), 0, 0);
      consider(certificate?.validToDate.toISOString(), 0, 0);
      continue;
    }
    // States as the publication policy reads them: any spelling CM may use.
    const state = recogniseState(key.state);
    if (state === 'Pre-Active') consider(key.activationDate, 0, CM_TRANSITION_GRACE_MS);
    if (state === 'Pre-Active' || state === 'Active' || state === PROTECT_STOP) consider(key.deactivationDate, 0, CM_TRANSITION_GRACE_MS);
    // Entering protect-stop (a scheduled rotation's replaced key): an `enc` key leaves, a `sig` key's retention starts.
    if (state === 'Pre-Active' || state === 'Active') consider(key.protectStopDate, 0, CM_TRANSITION_GRACE_MS);
    if (state === 'Deactivated') consider(key.deactivationDate, retainDeactivatedMs, 0);
    if (state === PROTECT_STOP) consider(key.protectStopDate, retainDeactivatedMs, 0);
  }
  return next === undefined ? undefined : new Date(next);
}
