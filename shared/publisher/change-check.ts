import type { CmKey } from '../ciphertrust/cm-key.js';
import { CipherTrustError } from '../ciphertrust/errors.js';
import type { ChangedKey, KeyChanges } from '../ciphertrust/key-changes.js';
import type { Logger } from '../observability/logger.js';
import { nextDueDate } from './due-dates.js';
import type { CycleOutcome, CycleResult, CycleTrigger } from './publication-cycle.js';

export const CHECK_OUTCOMES = ['unchanged', 'changed', 'due', 'failed'] as const;
export type CheckOutcome = (typeof CHECK_OUTCOMES)[number];

export interface ChangeCheckResult {
  readonly outcome: CheckOutcome;
  /** Why a cycle ran: CM reported changes, a known date passed, or nothing is known yet (after a start). */
  readonly reason?: 'changes' | 'date' | 'no_baseline';
  /** The publication cycle the check ran (changed, due), or undefined. */
  readonly publication?: CycleResult;
  readonly message?: string;
}

export interface ChangeCheckDependencies {
  readonly changes: { changedAfter(updatedAfter: Date): Promise<KeyChanges> };
  readonly logger: Logger;
  readonly observer: { changeCheck(outcome: CheckOutcome): void };
  readonly retainDeactivatedMs: number;
  readonly now?: () => Date;
}

/**
 * How far before the newest change already handled each query starts: a change another cluster
 * node wrote with a slightly earlier clock, or replicated late, still falls inside the window.
 * Objects in the window already handled are remembered, so they do not count twice.
 */
export const CHANGE_WINDOW_OVERLAP_MS = 120_000;

/**
 * The frequent, cheap check between full reconciles (a PingSource tick every minute): has
 * anything in CM changed since the last read, or has a date a key carries passed? Only then does
 * it run a publication cycle (through the caller's coalescer, so every guard applies).
 *
 * State (the high-water mark, what was seen near it, the next known date) lives in memory and is
 * rebuilt from every full read of CM (`observe`, fed by the cycle's reader): after a restart the
 * startup cycle rebuilds it, and a tick that finds none (that cycle failed, or another replica
 * got the tick) runs a full cycle. A restart therefore costs one full read, never a missed change.
 *
 * Cost: a tick with nothing due makes exactly one CM request (query-keys; plus a token refresh
 * when the JWT expired). A due date costs no query: the full cycle reads everything anyway.
 */
export class ChangeCheck {
  private readonly now: () => Date;
  /** Newest updatedAt handled (CM's clock, from CM's answers); undefined = no baseline. */
  private mark: number | undefined;
  /** `id@updatedAt` of objects already handled, inside the overlap window. */
  private seen = new Set<string>();
  private nextDue: Date | undefined;
  private pendingRead: { readonly keys: readonly CmKey[]; readonly readAt: Date } | undefined;

  constructor(private readonly deps: ChangeCheckDependencies) {
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * Every full read of CM's keys (whatever cycle made it) lands here, and becomes the baseline once
   * its cycle ends without failing (`cycleFinished`): a change read by a cycle that could not
   * write stays unhandled, so the next tick runs a cycle for it again.
   */
  observe(keys: readonly CmKey[], readAt: Date = this.now()): void {
    this.pendingRead = { keys, readAt };
  }

  /** The end of the cycle whose read was observed last. */
  cycleFinished(outcome: CycleOutcome): void {
    const read = this.pendingRead;
    this.pendingRead = undefined;
    if (read !== undefined && outcome !== 'failed') this.adopt(read.keys, read.readAt);
  }

  private adopt(keys: readonly CmKey[], readAt: Date): void {
    this.remember(keys.map((key) => ({ id: key.id, updatedAt: key.updatedAt === '' ? undefined : key.updatedAt })));
    // A baseline exists from now on, even when no key has a readable updatedAt.
    this.mark ??= readAt.getTime() - CHANGE_WINDOW_OVERLAP_MS;
    this.nextDue = nextDueDate(keys, readAt, this.deps.retainDeactivatedMs);
  }

  /** The next known date, for /readyz and tests. */
  get nextDueAt(): Date | undefined {
    return this.nextDue;
  }

  /** One tick. `publish` runs (or joins) a publication cycle. */
  async tick(publish: (trigger: CycleTrigger) => Promise<CycleResult>, eventId?: string): Promise<ChangeCheckResult> {
    const trigger: CycleTrigger = { kind: 'change-check', ...(eventId !== undefined && { eventId, eventType: 'dev.knative.sources.ping' }) };
    const now = this.now();
    if (this.mark === undefined) return this.finish({ outcome: 'due', reason: 'no_baseline', publication: await publish(trigger) });
    if (this.nextDue !== undefined && this.nextDue.getTime() <= now.getTime()) {
      const due = this.nextDue;
      const publication = await publish(trigger);
      return this.finish({ outcome: 'due', reason: 'date', publication, message: `a key date passed (${due.toISOString()})` });
    }
    let changes: KeyChanges;
    try {
      changes = await this.deps.changes.changedAfter(new Date(this.mark - CHANGE_WINDOW_OVERLAP_MS));
    } catch (error) {
      if (!(error instanceof CipherTrustError)) throw error;
      return this.finish({ outcome: 'failed', message: error.message });
    }
    const unseen = changes.keys.filter((key) => !this.seen.has(seenKey(key)));
    if (unseen.length === 0 && changes.total <= changes.keys.length) return this.finish({ outcome: 'unchanged' });
    const publication = await publish(trigger);
    // Handled only once a cycle read CM after the answer: a failed cycle leaves them unseen, so
    // the next tick tries again.
    if (publication.outcome !== 'failed') this.remember(changes.keys);
    const changed = unseen.length + (changes.total - changes.keys.length);
    return this.finish({ outcome: 'changed', reason: 'changes', publication, message: `${changed} key object(s) changed in CipherTrust Manager` });
  }

  private remember(keys: readonly ChangedKey[]): void {
    for (const key of keys) {
      const at = key.updatedAt === undefined ? Number.NaN : Date.parse(key.updatedAt);
      if (!Number.isNaN(at) && (this.mark === undefined || at > this.mark)) this.mark = at;
      this.seen.add(seenKey(key));
    }
    if (this.mark === undefined) return;
    // Bounded: what is older than the window is never returned again, so it is forgotten.
    const oldest = this.mark - 2 * CHANGE_WINDOW_OVERLAP_MS;
    this.seen = new Set(
      [...this.seen].filter((entry) => {
        const at = Date.parse(entry.slice(entry.lastIndexOf('@') + 1));
        return Number.isNaN(at) || at >= oldest;
      }),
    );
  }

  private finish(result: ChangeCheckResult): ChangeCheckResult {
    this.deps.observer.changeCheck(result.outcome);
    const record = {
      event: 'change_check',
      outcome: result.outcome,
      ...(result.reason !== undefined && { reason: result.reason }),
      ...(result.publication !== undefined && { publication: result.publication.outcome }),
      ...(this.nextDue !== undefined && { nextDueAt: this.nextDue.toISOString() }),
    };
    // One line per check that did something or failed; a quiet minute is a debug line.
    if (result.outcome === 'unchanged') this.deps.logger.debug(record, 'nothing changed in CipherTrust Manager');
    else if (result.outcome === 'failed') this.deps.logger.warn({ ...record, message: result.message }, 'the change check could not ask CipherTrust Manager; the next tick tries again');
    else this.deps.logger.info(record, result.message ?? 'change check ran a publication');
    return result;
  }
}

/** An object without a readable updatedAt is keyed by its id alone. */
function seenKey(key: ChangedKey): string {
  return `${key.id}@${key.updatedAt === undefined ? '' : new Date(Date.parse(key.updatedAt)).toISOString()}`;
}
