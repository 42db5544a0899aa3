/** Guards between a computed key set and the store. Stable names: metric labels and audit values. */
export const GUARD_NAMES = ['empty_set', 'mass_removal'] as const;
export type GuardName = (typeof GUARD_NAMES)[number];

export interface GuardRefusal {
  readonly guard: GuardName;
  readonly message: string;
}

export interface GuardInput {
  /** Kids published now (empty when nothing is, or the published set could not be read). */
  readonly publishedKids: readonly string[];
  readonly nextKids: readonly string[];
  /** Kids of Compromised/Destroyed keys: removing them is never held back. */
  readonly withdrawnKids: ReadonlySet<string>;
  readonly allowEmpty: boolean;
  /** An operator confirmed a large removal (jwks-refresh --confirm-removal). */
  readonly confirmRemoval: boolean;
}

/**
 * Refuses publications that look like an accident rather than a rotation: an empty set (a wrong
 * selector, an emptied CM partition), or one that drops more than half of the published keys for
 * reasons other than compromise or destruction. A compromised key is never kept to satisfy a guard:
 * when every key removed is withdrawn, even an empty set is published.
 */
export function checkGuards(input: GuardInput): GuardRefusal | undefined {
  const next = new Set(input.nextKids);
  const removed = input.publishedKids.filter((kid) => !next.has(kid));
  const ordinaryRemovals = removed.filter((kid) => !input.withdrawnKids.has(kid));
  if (next.size === 0 && !input.allowEmpty && (removed.length === 0 || ordinaryRemovals.length > 0)) {
    return {
      guard: 'empty_set',
      message: 'CipherTrust Manager offers no publishable key for the selector; refusing to publish an empty set (JWKS_ALLOW_EMPTY=true allows it)',
    };
  }
  if (ordinaryRemovals.length * 2 > input.publishedKids.length && !input.confirmRemoval) {
    return {
      guard: 'mass_removal',
      message: `the new set would remove ${ordinaryRemovals.length} of ${input.publishedKids.length} published keys that are not compromised or destroyed (more than half); keeping the current set`,
    };
  }
  return undefined;
}
