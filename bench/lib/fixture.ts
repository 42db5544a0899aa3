import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import type { KeySetStore } from '../../shared/store/store.js';
import { publish } from '../../test/support/backends.js';
import { ecKey, rsaKey } from '../../test/support/keys.js';

/**
 * A key set shaped like production's (issue 6: about 1.7 KB): two RSA-2048 signing keys (current
 * and retained), an EC P-256 signing key and an RSA encryption key. Fresh keys every call.
 */
export async function productionLikeKeys(): Promise<PublicJwk[]> {
  const keys = await Promise.all([rsaKey('sig'), rsaKey('sig'), ecKey('P-256'), rsaKey('enc')]);
  return keys.map((key) => key.jwk);
}

/** A file store in a new temporary directory holding `keys` as the publisher writes them. */
export async function fileStoreWith(keys: readonly PublicJwk[]): Promise<{ directory: string; store: KeySetStore; body: Buffer }> {
  const directory = await mkdtemp(join(tmpdir(), 'jwks-bench-'));
  const store = new FileKeySetStore(directory);
  const body = await publish(store, keys);
  return { directory, store, body };
}
