import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeySetRefusedError } from './errors.js';
import { isValidKid } from './kid.js';
import { assertCertificateMembers, type CertificateMembers } from './certificate-members.js';
import { ALGORITHMS, CERTIFICATE_MEMBERS, CURVES_BY_KTY, EC_SIGNING_ALG_BY_CRV, PRIVATE_MEMBERS, PUBLIC_MEMBERS_BY_KTY } from './members.js';

/** A public JWK as we publish it: exactly these members (the certificate ones optional), nothing else. */
export type PublicJwk = (
  | { kty: 'RSA'; kid: string; use: KeyUse; alg: string; n: string; e: string }
  | { kty: 'EC'; kid: string; use: KeyUse; alg: string; crv: string; x: string; y: string }
  | { kty: 'OKP'; kid: string; use: KeyUse; alg: string; crv: string; x: string }
) &
  Partial<CertificateMembers>;

export type KeyUse = 'sig' | 'enc';

export interface ValidatedKeySet {
  readonly keys: readonly PublicJwk[];
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MIN_RSA_BITS = 2048;
const KEY_MEMBERS = ['kty', 'crv', 'n', 'e', 'x', 'y'];
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses and validates the bytes of a JWK Set. Throws KeySetRefusedError; never returns a set that
 * holds private material, a duplicate kid, or a key a mainstream client would choke on.
 */
export function validateKeySet(bytes: Uint8Array): ValidatedKeySet {
  const document = parseJson(bytes);
  if (!isPlainObject(document) || !Array.isArray(document.keys)) {
    throw new KeySetRefusedError('invalid_shape', 'a JWK Set must be a JSON object with a "keys" array');
  }
  const extra = Object.keys(document).filter((name) => name !== 'keys');
  if (extra.length > 0) {
    throw new KeySetRefusedError('invalid_shape', `unexpected top-level member "${extra[0]}"`);
  }
  const candidates: unknown[] = document.keys;
  // Private material is looked for in every key first, so a leak is always reported as such even
  // when another key in the same set is also broken.
  candidates.forEach((candidate, index) => assertNoPrivateMaterial(candidate, index));

  const seen = new Set<string>();
  const keys = candidates.map((candidate, index) => {
    const key = validatePublicJwk(candidate, `keys[${index}]`);
    if (seen.has(key.kid)) {
      throw new KeySetRefusedError('duplicate_kid', `kid "${key.kid}" appears more than once`);
    }
    seen.add(key.kid);
    return key;
  });
  return { keys };
}

/** Parses the bytes of a single JWK (a per-kid file) with the same rules as a set member. */
export function validateSingleJwk(bytes: Uint8Array): PublicJwk {
  const document = parseJson(bytes);
  assertNoPrivateMaterial(document, 0);
  return validatePublicJwk(document, 'jwk');
}

export function validatePublicJwk(candidate: unknown, where: string): PublicJwk {
  if (!isPlainObject(candidate)) {
    throw new KeySetRefusedError('invalid_shape', `${where} is not a JSON object`);
  }
  const kty = candidate.kty;
  const allowed = typeof kty === 'string' ? PUBLIC_MEMBERS_BY_KTY[kty] : undefined;
  if (allowed === undefined) {
    throw new KeySetRefusedError('unsupported_kty', `${where} has unsupported kty ${JSON.stringify(kty)}`);
  }
  const unexpected = Object.keys(candidate).find((member) => !allowed.includes(member) && !CERTIFICATE_MEMBERS.includes(member));
  if (unexpected !== undefined) {
    throw new KeySetRefusedError('unexpected_member', `${where} has unexpected member "${unexpected}"`);
  }
  const kid = candidate.kid;
  if (!isValidKid(kid)) {
    throw new KeySetRefusedError('invalid_kid', `${where} has a missing or malformed kid`);
  }
  const use = candidate.use;
  if (use !== 'sig' && use !== 'enc') {
    throw new KeySetRefusedError('invalid_use', `${where} (kid ${kid}) must have use "sig" or "enc"`);
  }
  for (const member of allowed) {
    if (member === 'kty' || member === 'kid' || member === 'use') continue;
    const value = candidate[member];
    if (typeof value !== 'string' || (member !== 'alg' && member !== 'crv' && !BASE64URL.test(value))) {
      throw new KeySetRefusedError(
        member === 'alg' ? 'invalid_alg' : 'invalid_key_material',
        `${where} (kid ${kid}) has a missing or malformed "${member}"`,
      );
    }
  }
  const alg = candidate.alg as string;
  const crv = candidate.crv as string | undefined;
  const curves = CURVES_BY_KTY[kty as string];
  if (curves !== undefined && (crv === undefined || !curves.includes(crv))) {
    throw new KeySetRefusedError('invalid_key_material', `${where} (kid ${kid}) has unsupported crv ${JSON.stringify(crv)}`);
  }
  if (!algorithmFits(kty as string, use, alg, crv)) {
    throw new KeySetRefusedError('invalid_alg', `${where} (kid ${kid}) has alg "${alg}", which does not fit ${kty as string}/${use}`);
  }
  const key = assertParsesAsPublicKey(candidate, where, kid);
  assertCertificateMembers(candidate, key, `${where} (kid ${kid})`);
  return candidate as unknown as PublicJwk;
}

/** Whether `alg` is one a client accepts for this key type, use and curve (RFC 7518). */
export function algorithmFits(kty: string, use: KeyUse, alg: string, crv: string | undefined): boolean {
  if (!(ALGORITHMS[kty]?.[use] ?? []).includes(alg)) return false;
  if (kty === 'EC' && use === 'sig') return EC_SIGNING_ALG_BY_CRV[crv ?? ''] === alg;
  if (kty === 'OKP') return use === 'sig' ? crv === 'Ed25519' : crv === 'X25519';
  return true;
}

function assertParsesAsPublicKey(jwk: Record<string, unknown>, where: string, kid: string): KeyObject {
  let key: KeyObject;
  try {
    key = publicKeyObject(jwk);
  } catch {
    throw new KeySetRefusedError('invalid_key_material', `${where} (kid ${kid}) is not a valid public key`);
  }
  if (jwk.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new KeySetRefusedError('weak_key', `${where} (kid ${kid}) is an RSA key under ${MIN_RSA_BITS} bits`);
  }
  return key;
}

/** The JWK's key as a KeyObject, from its key members only (Node would otherwise also read x5c). */
export function publicKeyObject(jwk: Readonly<Record<string, unknown>> | PublicJwk): KeyObject {
  const source = jwk as Readonly<Record<string, unknown>>;
  const members = Object.fromEntries(KEY_MEMBERS.filter((name) => typeof source[name] === 'string').map((name) => [name, source[name] as string]));
  return createPublicKey({ key: members, format: 'jwk' });
}

function assertNoPrivateMaterial(candidate: unknown, index: number): void {
  if (!isPlainObject(candidate)) return;
  const leaked = PRIVATE_MEMBERS.find((member) => Object.hasOwn(candidate, member));
  if (leaked !== undefined || candidate.kty === 'oct') {
    const what = leaked !== undefined ? `private member "${leaked}"` : 'a symmetric (oct) key';
    const kid = isValidKid(candidate.kid) ? ` (kid ${candidate.kid})` : '';
    throw new KeySetRefusedError('private_key_material', `keys[${index}]${kid} holds ${what}`);
  }
}

function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new KeySetRefusedError('not_utf8', 'the document is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new KeySetRefusedError('malformed_json', 'the document is not valid JSON (corrupt or truncated)');
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
