/**
 * Key material: which algorithm/size/curve combinations CM accepts, real key generation, and the
 * public PEM and fingerprints derived from it. Private halves are dropped as soon as they are
 * generated: the emulator offers no cryptographic operation and no export, so it has no reason
 * to hold a secret that could leak into a response or a log.
 */
import { createHash, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { invalidParam } from './errors.js';

export type KeySpec =
  | { readonly algorithm: 'RSA'; readonly size: number }
  | { readonly algorithm: 'EC'; readonly curveid: string; readonly size: number }
  | { readonly algorithm: 'AES'; readonly size: number };

/** What the emulator keeps of a key: the public half of asymmetric keys, nothing of AES keys. */
export interface KeyMaterial {
  readonly publicKey?: KeyObject;
}

/** CM's RSA default is 1024 bits (reference, H); clients must not assume 2048. */
export const RSA_DEFAULT_SIZE = 1024;
export const RSA_SIZES: readonly number[] = [512, 1024, 2048, 3072, 4096];
export const EC_DEFAULT_CURVE = 'prime256v1';
export const AES_SIZES: readonly number[] = [128, 192, 256];
export const AES_DEFAULT_SIZE = 256;

/**
 * Curves and the size CM reports for them (size for EC keys: M). `curve25519` is generated as
 * Ed25519: whether CM means Ed25519 or X25519 by that id is not confirmed (reference, L).
 */
const EC_CURVES: Record<string, number> = {
  prime256v1: 256,
  secp384r1: 384,
  secp521r1: 521,
  secp256k1: 256,
  curve25519: 256,
};

/** Validates a create request's algorithm parameters (algorithm case-insensitive) and fills CM's defaults. */
export function resolveSpec(algorithm: unknown, size: unknown, curveid: unknown): KeySpec {
  if (typeof algorithm !== 'string') throw invalidParam('algorithm is required');
  if (size !== undefined && (typeof size !== 'number' || !Number.isInteger(size))) throw invalidParam('size must be an integer');
  if (curveid !== undefined && typeof curveid !== 'string') throw invalidParam('curveid must be a string');
  switch (algorithm.toLowerCase()) {
    case 'rsa': {
      const bits = size ?? RSA_DEFAULT_SIZE;
      if (!RSA_SIZES.includes(bits)) throw invalidParam(`unsupported RSA key size ${bits}`);
      return { algorithm: 'RSA', size: bits };
    }
    case 'ec': {
      const curve = curveid ?? EC_DEFAULT_CURVE;
      const bits = EC_CURVES[curve];
      if (bits === undefined) throw invalidParam(`unsupported curveid ${curve}`);
      return { algorithm: 'EC', curveid: curve, size: bits };
    }
    case 'aes': {
      const bits = size ?? AES_DEFAULT_SIZE;
      if (!AES_SIZES.includes(bits)) throw invalidParam(`unsupported AES key size ${bits}`);
      return { algorithm: 'AES', size: bits };
    }
    default:
      throw invalidParam(`unsupported algorithm ${algorithm}`);
  }
}

/** Synchronous generation, for the programmatic API (`keys.create` returns a resource, not a promise). */
export function generateMaterialSync(spec: KeySpec): KeyMaterial {
  switch (spec.algorithm) {
    case 'RSA':
      return { publicKey: generateKeyPairSync('rsa', { modulusLength: spec.size }).publicKey };
    case 'EC':
      return {
        publicKey:
          spec.curveid === 'curve25519' ? generateKeyPairSync('ed25519').publicKey : generateKeyPairSync('ec', { namedCurve: spec.curveid }).publicKey,
      };
    case 'AES':
      return {};
  }
}

const generateAsync = promisify(generateKeyPair);

/** Off-thread generation for REST calls, so a 4096-bit key does not stall other requests. */
export async function generateMaterial(spec: KeySpec): Promise<KeyMaterial> {
  switch (spec.algorithm) {
    case 'RSA':
      return { publicKey: (await generateAsync('rsa', { modulusLength: spec.size })).publicKey };
    case 'EC':
      return {
        publicKey:
          spec.curveid === 'curve25519' ? (await generateAsync('ed25519', {})).publicKey : (await generateAsync('ec', { namedCurve: spec.curveid })).publicKey,
      };
    case 'AES':
      return {};
  }
}

/** PKCS#1 or SPKI for RSA (which one CM emits is not confirmed, L); always SPKI otherwise. */
export function publicKeyPem(publicKey: KeyObject, rsaFormat: 'pkcs1' | 'spki'): string {
  const type = publicKey.asymmetricKeyType === 'rsa' && rsaFormat === 'pkcs1' ? 'pkcs1' : 'spki';
  return publicKey.export({ type, format: 'pem' }).toString();
}

/** Hex digests of the SPKI DER of the public key (what CM hashes is not documented, L). */
export function fingerprints(publicKey: KeyObject): { sha1: string; sha256: string } {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { sha1: createHash('sha1').update(der).digest('hex'), sha256: createHash('sha256').update(der).digest('hex') };
}

/** The spec a key object was created with, for generating the material of its next version. */
export function specOf(algorithm: string, size: number | undefined, curveid: string | undefined): KeySpec {
  return resolveSpec(algorithm, algorithm === 'EC' ? undefined : size, curveid);
}
