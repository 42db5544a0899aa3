import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { EcCurve } from './public-jwk.js';

export const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** How one JWS algorithm maps onto PKCS#11. */
export interface SigningMechanism {
  readonly kty: 'RSA' | 'EC';
  /** For ES*: the one curve the algorithm is defined on (RFC 7518 3.4). */
  readonly crv?: EcCurve;
  readonly mechanism: pkcs11js.Mechanism;
  /**
   * What the token is given: the signing input itself (the token hashes, RSA) or its digest
   * (CKM_ECDSA signs a hash; hashing here keeps the data sent to a network HSM small).
   */
  toSign(signingInput: Buffer): Buffer;
  /** Checks a signature with node:crypto: every signature is verified before it leaves the module. */
  verify(publicKey: KeyObject, signingInput: Buffer, signature: Buffer): boolean;
}

const RSA_HASH = {
  256: { hash: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, pkcs1: pkcs11js.CKM_SHA256_RSA_PKCS, pss: pkcs11js.CKM_SHA256_RSA_PKCS_PSS },
  384: { hash: pkcs11js.CKM_SHA384, mgf: pkcs11js.CKG_MGF1_SHA384, pkcs1: pkcs11js.CKM_SHA384_RSA_PKCS, pss: pkcs11js.CKM_SHA384_RSA_PKCS_PSS },
  512: { hash: pkcs11js.CKM_SHA512, mgf: pkcs11js.CKG_MGF1_SHA512, pkcs1: pkcs11js.CKM_SHA512_RSA_PKCS, pss: pkcs11js.CKM_SHA512_RSA_PKCS_PSS },
} as const;

const asIs = (signingInput: Buffer): Buffer => signingInput;
const digest =
  (algorithm: string) =>
  (signingInput: Buffer): Buffer =>
    createHash(algorithm).update(signingInput).digest();

function rsaPkcs1(bits: 256 | 384 | 512): SigningMechanism {
  return {
    kty: 'RSA',
    mechanism: { mechanism: RSA_HASH[bits].pkcs1 },
    toSign: asIs,
    verify: (key, input, signature) => verify(`sha${bits}`, input, { key, padding: constants.RSA_PKCS1_PADDING }, signature),
  };
}

function rsaPss(bits: 256 | 384 | 512): SigningMechanism {
  const { hash, mgf, pss } = RSA_HASH[bits];
  // RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash output.
  const parameter: pkcs11js.RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: hash, mgf, saltLen: bits / 8 };
  return {
    kty: 'RSA',
    mechanism: { mechanism: pss, parameter },
    toSign: asIs,
    verify: (key, input, signature) => verify(`sha${bits}`, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: bits / 8 }, signature),
  };
}

function ecdsa(crv: EcCurve, hash: string): SigningMechanism {
  return {
    kty: 'EC',
    crv,
    mechanism: { mechanism: pkcs11js.CKM_ECDSA },
    toSign: digest(hash),
    // CKM_ECDSA returns r||s, each as long as the curve order: the JWS form (RFC 7518 3.4).
    verify: (key, input, signature) => verify(hash, input, { key, dsaEncoding: 'ieee-p1363' }, signature),
  };
}

export const SIGNING_MECHANISMS: Readonly<Record<SigningAlgorithm, SigningMechanism>> = {
  RS256: rsaPkcs1(256),
  RS384: rsaPkcs1(384),
  RS512: rsaPkcs1(512),
  PS256: rsaPss(256),
  PS384: rsaPss(384),
  PS512: rsaPss(512),
  ES256: ecdsa('P-256', 'sha256'),
  ES384: ecdsa('P-384', 'sha384'),
  ES512: ecdsa('P-521', 'sha512'),
};

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return typeof value === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/** Signature length in bytes: the modulus length (RSA) or twice the coordinate length (ECDSA r||s). */
export function signatureLength(kty: 'RSA' | 'EC', keyBytes: number): number {
  return kty === 'RSA' ? keyBytes : 2 * keyBytes;
}
