import type { CertificateProblem } from './certificate-chain.js';
import type { SkipReason } from './cm-key-to-jwk.js';
import type { GuardName } from './guards.js';
import type { CycleOutcome } from './publication-cycle.js';
import type { PlannedKey } from './publication-policy.js';

/** What a publication cycle reports as it runs; the metrics implement it (no prom-client here). */
export interface PublicationObserver {
  cycleFinished(outcome: CycleOutcome, seconds: number, at: Date): void;
  guardRefused(guard: GuardName): void;
  keySkipped(reason: SkipReason): void;
  /** The set now in the store, after a successful write (changed or not), and its size in bytes. */
  keysPublished(keys: readonly PlannedKey[], bytes: number): void;
  /** Published keys kept as they are because CM answered them unreadable, this cycle. */
  keysKeptUnreadable(count: number): void;
  /** Published keys kept as they are although CM reports them in a state we do not know, this cycle. */
  keysKeptUnknownState(count: number): void;
  /** Why each key with a certificate in CM goes out without it, this cycle (empty: none). */
  certificatesRefused(problems: readonly CertificateProblem[]): void;
}
