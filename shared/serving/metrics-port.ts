import { STORE_FAILURES } from '../store/store.js';
import type { RefusalReason } from '../jwks/errors.js';

export const STORE_PROBLEMS = [...STORE_FAILURES, 'missing', 'key_file_missing', 'key_file_mismatch'] as const;
export type StoreProblem = (typeof STORE_PROBLEMS)[number];

/** What the key-set cache reports; implemented with prom-client in the HTTP layer. */
export interface KeySetCacheEvents {
  storeRead(object: 'set' | 'key', result: 'unchanged' | 'found' | 'missing' | 'error'): void;
  storeError(problem: StoreProblem): void;
  setRefused(reason: RefusalReason): void;
  checkSucceeded(at: Date): void;
}
