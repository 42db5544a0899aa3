/** Guards between a computed key set and the store. Stable names: metric labels and audit values. */
export const GUARD_NAMES = ['empty_set', 'mass_removal', 'max_keys', 'max_bytes'] as const;
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

/** The serialized set a cycle would publish, and the caps partners can hold. */
export interface SetCapsInput {
  readonly keys: number;
  readonly bytes: number;
  /** JWKS_MAX_KEYS: some consumers refuse a set with more keys (OCI API Gateway: 10). */
  readonly maxKeys: number;
  /** JWKS_MAX_BYTES: serving refuses a larger jwks.json unread. */
  readonly maxBytes: number;
}

/**
 * Refuses a set partners could not hold. A set already above a cap lowered since is refused too,
 * until it shrinks (the cycle says how); the withdrawal of a compromised key is never held back by
 * a cap (the publication cycle publishes it without the keys that would be added).
 */
export function checkSetCaps(input: SetCapsInput): GuardRefusal | undefined {
  if (input.keys > input.maxKeys) {
    return { guard: 'max_keys', message: `the new set would hold ${input.keys} keys, over JWKS_MAX_KEYS (${input.maxKeys}); keeping the current set` };
  }
  if (input.bytes > input.maxBytes) {
    return { guard: 'max_bytes', message: `the new set would be ${input.bytes} bytes, over JWKS_MAX_BYTES (${input.maxBytes}); keeping the current set` };
  }
  return undefined;
}
