import type { CipherTrustClient } from './client.js';
import { CipherTrustError } from './errors.js';

/** One key object CM reports changed: its id and, when the answer carries it, its updatedAt. */
export interface ChangedKey {
  readonly id: string;
  readonly updatedAt: string | undefined;
}

export interface KeyChanges {
  /** How many objects CM counts as changed (may exceed `keys` when the answer was capped). */
  readonly total: number;
  readonly keys: readonly ChangedKey[];
}

/**
 * Enough to tell a real change from ones already seen without paging: CM's default page is 10
 * (M), and a minute rarely changes more. A larger total is still a change; it is never paged.
 */
export const CHANGE_QUERY_LIMIT = 100;

/**
 * "Which key objects changed after this date?" in one CM request: `POST /api/v1/vault/query-keys`
 * with `updatedAfter` (H: field of the query-keys body), every object of the domain, no label
 * filter (a key whose label was removed changed too, and a label filter would no longer match it).
 * Read tolerantly (answer shape M: the list's envelope; `resources` may be null when empty, hold
 * ids only, or `total` be absent).
 */
export class KeyChangeQuery {
  constructor(private readonly client: Pick<CipherTrustClient, 'queryKeys'>) {}

  async changedAfter(updatedAfter: Date): Promise<KeyChanges> {
    // RFC 3339 in UTC, as CM writes its dates (H); milliseconds are enough for a lower bound.
    const answer = await this.client.queryKeys({ updatedAfter: updatedAfter.toISOString(), skip: 0, limit: CHANGE_QUERY_LIMIT });
    return readChanges(answer);
  }
}

export function readChanges(answer: unknown): KeyChanges {
  const envelope = answer as { total?: unknown; resources?: unknown } | null | undefined;
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
    throw new CipherTrustError('malformed_response', 'query_keys', 'the query-keys answer is not a JSON object');
  }
  const resources = envelope.resources ?? [];
  if (!Array.isArray(resources)) throw new CipherTrustError('malformed_response', 'query_keys', 'the query-keys answer has no resources array');
  const keys: ChangedKey[] = [];
  for (const item of resources) {
    if (typeof item === 'string' && item !== '') keys.push({ id: item, updatedAt: undefined });
    else if (typeof item === 'object' && item !== null && typeof (item as { id?: unknown }).id === 'string') {
      const { id, updatedAt } = item as { id: string; updatedAt?: unknown };
      keys.push({ id, updatedAt: typeof updatedAt === 'string' && !Number.isNaN(Date.parse(updatedAt)) ? updatedAt : undefined });
    } else {
      throw new CipherTrustError('malformed_response', 'query_keys', 'the query-keys answer lists an object without an id');
    }
  }
  const total = typeof envelope.total === 'number' && Number.isSafeInteger(envelope.total) && envelope.total >= 0 ? envelope.total : keys.length;
  return { total: Math.max(total, keys.length), keys };
}
