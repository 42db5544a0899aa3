import { calculateJwkThumbprint } from 'jose';

/**
 * The kid we publish: the RFC 7638 SHA-256 thumbprint of the public key, base64url. It depends on
 * the key alone (kty and n/e, or crv/x/y), so an internal app holding only the public half in its
 * HSM computes the same kid without asking anyone.
 */
export async function thumbprintKid(jwk: { kty: string; n?: string; e?: string; crv?: string; x?: string; y?: string }): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}
