import type { StoreFailure } from '../store/store.js';
import type { RefusalReason } from '../jwks/errors.js';

export type StoreProblem = StoreFailure | 'missing' | 'key_file_missing' | 'key_file_mismatch';

/** What the key-set cache reports; implemented with prom-client in the HTTP layer. */
export interface KeySetCacheEvents {
  storeRead(object: 'set' | 'key', result: 'unchanged' | 'found' | 'missing' | 'error'): void;
  storeError(problem: StoreProblem): void;
  setRefused(reason: RefusalReason): void;
  checkSucceeded(at: Date): void;
}
