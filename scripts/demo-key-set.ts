import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { serializeKey, serializeKeySet } from '../shared/jwks/serialize.js';
import { thumbprintKid } from '../shared/jwks/thumbprint.js';
import type { PublicJwk } from '../shared/jwks/validate.js';
import { KEY_SET_OBJECT, keyObjectName, type KeySetStore } from '../shared/store/store.js';

/**
 * A demonstration key set for `npm start` when no publisher has written one: generated at run
 * time, only the public halves kept. The private halves are dropped at once and never written.
 */
export async function writeDemoKeySet(store: KeySetStore): Promise<PublicJwk[]> {
  const keys = [
    await publicJwk(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, 'sig', 'RS256'),
    await publicJwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, 'sig', 'ES256'),
    await publicJwk(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, 'enc', 'RSA-OAEP-256'),
  ];
  // Per-key files first, then the set: the set is the commit point readers trust.
  for (const key of keys) await store.write(keyObjectName(key.kid), serializeKey(key));
  await store.write(KEY_SET_OBJECT, serializeKeySet(keys));
  return keys;
}

async function publicJwk(publicKey: KeyObject, use: 'sig' | 'enc', alg: string): Promise<PublicJwk> {
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; n?: string; e?: string; crv?: string; x?: string; y?: string };
  return { ...jwk, kid: await thumbprintKid(jwk), use, alg } as PublicJwk;
}
