import type { KeyObject } from 'node:crypto';
import type { CmKey } from '../ciphertrust/cm-key.js';
import { KeySetRefusedError } from '../jwks/errors.js';
import { thumbprintKid } from '../jwks/thumbprint.js';
import { algorithmFits, validatePublicJwk, type KeyUse, type PublicJwk } from '../jwks/validate.js';
import { parsePublicPem } from '../ciphertrust/public-pem.js';

/** Why a CM key is not published. Stable strings: they are metric labels and audit values. */
export const SKIP_REASONS = [
  'malformed_resource',
  'public_key_object',
  'not_key_pair',
  'unsupported_algorithm',
  'no_public_key',
  'malformed_public_key',
  'private_key_material',
  'weak_key',
  'unsupported_curve',
  'no_use',
  'ambiguous_use',
  'invalid_use_label',
  'invalid_alg_label',
  'unknown_state',
  'conflicting_duplicate',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export type Conversion =
  | { readonly kind: 'converted'; readonly key: CmKey; readonly jwk: PublicJwk }
  /** The key's material is known (so its kid is) but it cannot be published as it is. */
  | { readonly kind: 'skipped'; readonly key: CmKey; readonly reason: SkipReason; readonly detail: string; readonly kid?: string }
  /** A destroyed key whose public half CM no longer returns. Not a fault: nothing to publish. */
  | { readonly kind: 'no_material'; readonly key: CmKey };

/** CM usageMask bits (KMIP cryptographic usage mask). */
export const USAGE = { sign: 1, verify: 2, encrypt: 4, decrypt: 8, wrapKey: 16, unwrapKey: 32 } as const;
const SIGNATURE_BITS = USAGE.sign | USAGE.verify;
const ENCRYPTION_BITS = USAGE.encrypt | USAGE.decrypt | USAGE.wrapKey | USAGE.unwrapKey;

/** Labels that let a key's owner settle `use` and `alg` in CM itself. */
export const USE_LABEL = 'jwks-use';
export const ALG_LABEL = 'jwks-alg';

const MIN_RSA_BITS = 2048;
const JWK_CURVE_BY_CM_CURVE: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
const DEFAULT_ALG: Readonly<Record<string, string>> = {
  'RSA/sig': 'RS256',
  'RSA/enc': 'RSA-OAEP-256',
  'EC/enc': 'ECDH-ES',
  'P-256/sig': 'ES256',
  'P-384/sig': 'ES384',
  'P-521/sig': 'ES512',
};
const DESTROYED_STATES = new Set(['Destroyed', 'Destroyed Compromised']);

/**
 * Turns one CM key into the JWK we would publish, or says why not. Only key pairs (`Private Key`
 * objects) of RSA (2048 bits or more) and EC on P-256/384/521 qualify; `use` comes from the usage
 * mask (or the `jwks-use` label when the mask allows both), `alg` from the key type (or the
 * `jwks-alg` label when it fits), `kid` is the RFC 7638 thumbprint. The JWK is built from an
 * allowlist of public members only. State is not looked at here: that is the policy's job.
 */
export async function convertCmKey(key: CmKey): Promise<Conversion> {
  const skip = (reason: SkipReason, detail: string, kid?: string): Conversion => ({ kind: 'skipped', key, reason, detail, ...(kid !== undefined && { kid }) });
  const objectType = key.objectType.toLowerCase();
  if (objectType === 'public key') {
    // Never published itself, but its kid lets a compromised twin withhold the pair.
    const twin = key.publickey === undefined ? undefined : parsePublicPem(key.publickey);
    const members = twin?.ok === true ? publicMaterial(twin.key, key.algorithm.toUpperCase() === 'EC' ? 'EC' : 'RSA') : undefined;
    const kid = members !== undefined && 'members' in members ? await thumbprintKid(members.members) : undefined;
    return skip('public_key_object', 'a Public Key object duplicates the key pair it belongs to', kid);
  }
  if (objectType !== 'private key') return skip('not_key_pair', `object type "${key.objectType}" is not an asymmetric key pair`);
  const algorithm = key.algorithm.toUpperCase();
  if (algorithm !== 'RSA' && algorithm !== 'EC') return skip('unsupported_algorithm', `algorithm "${key.algorithm}" is not RSA or EC`);
  if (key.publickey === undefined) {
    return DESTROYED_STATES.has(key.state) ? { kind: 'no_material', key } : skip('no_public_key', 'CipherTrust Manager returned no publickey');
  }
  const pem = parsePublicPem(key.publickey);
  if (!pem.ok) {
    return pem.problem === 'private_key_material'
      ? skip('private_key_material', 'the publickey field holds a PRIVATE KEY block')
      : skip('malformed_public_key', pem.problem === 'not_public_pem' ? 'publickey is not one PUBLIC KEY or RSA PUBLIC KEY PEM block' : 'publickey does not parse');
  }
  const material = publicMaterial(pem.key, algorithm);
  if ('problem' in material) return skip(material.reason, material.problem);
  const kid = await thumbprintKid(material.members);
  if (material.weak) return skip('weak_key', `RSA key of ${material.bits} bits (at least ${MIN_RSA_BITS} required)`, kid);

  const use = useOf(key);
  if ('problem' in use) return skip(use.reason, use.problem, kid);
  const kty = material.members.kty;
  const crv = material.members.crv;
  const alg = key.labels[ALG_LABEL] ?? DEFAULT_ALG[`${kty === 'EC' && use.use === 'sig' ? crv : kty}/${use.use}`];
  if (alg === undefined || !algorithmFits(kty, use.use, alg, crv)) {
    return skip('invalid_alg_label', `label ${ALG_LABEL}="${alg}" does not fit a ${kty}${crv !== undefined ? ` ${crv}` : ''} ${use.use} key`, kid);
  }
  try {
    // The same validation the serving side applies: nothing we would publish can be refused there.
    const jwk = validatePublicJwk({ ...material.members, kid, use: use.use, alg }, `CM key ${key.id}`);
    return { kind: 'converted', key, jwk };
  } catch (error) {
    if (error instanceof KeySetRefusedError) return skip('malformed_public_key', error.message, kid);
    throw error;
  }
}

type Material =
  | { readonly members: { kty: 'RSA'; n: string; e: string; crv?: undefined }; readonly weak: boolean; readonly bits: number }
  | { readonly members: { kty: 'EC'; crv: string; x: string; y: string }; readonly weak: false; readonly bits: number }
  | { readonly problem: string; readonly reason: SkipReason };

/** The public members of the key, picked one by one from Node's JWK export. */
function publicMaterial(key: KeyObject, algorithm: 'RSA' | 'EC'): Material {
  const type = key.asymmetricKeyType;
  if (algorithm === 'RSA') {
    if (type !== 'rsa') return { reason: 'malformed_public_key', problem: `an RSA key whose publickey is a ${type ?? 'unknown'} key` };
    const { n, e } = key.export({ format: 'jwk' });
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (typeof n !== 'string' || typeof e !== 'string') return { reason: 'malformed_public_key', problem: 'RSA key without modulus or exponent' };
    return { members: { kty: 'RSA', n, e }, weak: bits < MIN_RSA_BITS, bits };
  }
  if (type !== 'ec') {
    return type === 'ed25519' || type === 'x25519' || type === 'ed448' || type === 'x448'
      ? { reason: 'unsupported_curve', problem: `curve ${type} is not published (P-256, P-384 and P-521 are)` }
      : { reason: 'malformed_public_key', problem: `an EC key whose publickey is a ${type ?? 'unknown'} key` };
  }
  const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
  const crv = JWK_CURVE_BY_CM_CURVE[curve];
  if (crv === undefined) return { reason: 'unsupported_curve', problem: `curve ${curve} is not published (P-256, P-384 and P-521 are)` };
  const { x, y } = key.export({ format: 'jwk' });
  if (typeof x !== 'string' || typeof y !== 'string') return { reason: 'malformed_public_key', problem: 'EC key without coordinates' };
  return { members: { kty: 'EC', crv, x, y }, weak: false, bits: 0 };
}

type UseDecision = { readonly use: KeyUse } | { readonly problem: string; readonly reason: SkipReason };

/**
 * Sign/Verify bits mean `sig`, Encrypt/Decrypt/WrapKey/UnwrapKey bits mean `enc`. A key allowed
 * both is published only when its `jwks-use` label picks one the mask allows.
 */
function useOf(key: CmKey): UseDecision {
  const signs = (key.usageMask & SIGNATURE_BITS) !== 0;
  const encrypts = (key.usageMask & ENCRYPTION_BITS) !== 0;
  const label = key.labels[USE_LABEL];
  if (label !== undefined) {
    if (label !== 'sig' && label !== 'enc') return { reason: 'invalid_use_label', problem: `label ${USE_LABEL}="${label}" must be sig or enc` };
    if ((label === 'sig' && !signs) || (label === 'enc' && !encrypts)) {
      return { reason: 'invalid_use_label', problem: `label ${USE_LABEL}="${label}" is not allowed by usageMask ${key.usageMask}` };
    }
    return { use: label };
  }
  if (signs && encrypts) return { reason: 'ambiguous_use', problem: `usageMask ${key.usageMask} allows both signing and encryption; set label ${USE_LABEL}` };
  if (signs) return { use: 'sig' };
  if (encrypts) return { use: 'enc' };
  return { reason: 'no_use', problem: `usageMask ${key.usageMask} allows neither signing nor encryption` };
}
