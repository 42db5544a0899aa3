import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { thumbprintKid } from '../../shared/jwks/thumbprint.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';

/** A key pair generated for the test run; only the public JWK is ever written to a store. */
export interface TestKey {
  readonly jwk: PublicJwk;
  readonly privateKey: KeyObject;
}

export async function rsaKey(use: 'sig' | 'enc' = 'sig', alg = use === 'sig' ? 'RS256' : 'RSA-OAEP-256', bits = 2048): Promise<TestKey> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { jwk: await publicJwk(publicKey, use, alg), privateKey };
}

export async function ecKey(curve: 'P-256' | 'P-384' | 'P-521' = 'P-256', use: 'sig' | 'enc' = 'sig'): Promise<TestKey> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const alg = use === 'enc' ? 'ECDH-ES' : { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[curve];
  return { jwk: await publicJwk(publicKey, use, alg), privateKey };
}

async function publicJwk(publicKey: KeyObject, use: 'sig' | 'enc', alg: string): Promise<PublicJwk> {
  const exported = publicKey.export({ format: 'jwk' }) as { kty: string };
  return { ...exported, kid: await thumbprintKid(exported), use, alg } as PublicJwk;
}

/** The private JWK of a test key: for building leak fixtures, never for a real store. */
export function privateJwk(key: TestKey): Record<string, unknown> {
  return { ...(key.privateKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: key.jwk.kid, use: key.jwk.use, alg: key.jwk.alg };
}

export async function signToken(key: TestKey, claims: Record<string, unknown> = { sub: 'partner-test' }): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.jwk.alg, kid: key.jwk.kid, typ: 'JWT' })
    .setIssuedAt()
    .setIssuer('https://bank.example/issuer')
    .setExpirationTime('5m')
    .sign(key.privateKey);
}
