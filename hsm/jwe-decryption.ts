import { createPublicKey } from 'node:crypto';
import { concatKdf } from './concat-kdf.js';
import { ContentDecryptionError, decryptContent, encryptionSpec } from './content-decryption.js';
import type { CompactJwe, JweHeader, KeyManagementAlgorithm } from './compact-jwe.js';
import { HsmError, JweDecryptionFailedError, JweInvalidError } from './errors.js';
import type { EcCurve, PublicKeyJwk } from './public-jwk.js';

/**
 * The private-key half of JWE key management, wherever the key lives: the PKCS#11 token in
 * production, node:crypto in the tests of the layer above it.
 */
export interface KeyDecryption {
  /** RSAES-OAEP with MGF1: SHA-1 for RSA-OAEP, SHA-256 for RSA-OAEP-256. Returns the CEK. */
  rsaOaepDecrypt(hash: 'sha1' | 'sha256', encryptedKey: Buffer): Buffer;
  /** The ECDH shared secret Z with the sender's ephemeral public point (04||X||Y). */
  ecdhSharedSecret(peerPoint: Buffer): Buffer;
}

const COORDINATE_BYTES: Readonly<Record<EcCurve, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

/**
 * Decrypts a parsed compact JWE with a key pair whose public half is `publicJwk`. Malformed
 * input is a JweInvalidError (safe to tell the sender); every failure that depends on the
 * ciphertext or key is the same JweDecryptionFailedError.
 */
export function decryptJwe(jwe: CompactJwe, publicJwk: PublicKeyJwk, keyDecryption: KeyDecryption, algorithms: readonly KeyManagementAlgorithm[]): Buffer {
  const { header } = jwe;
  if (!algorithms.includes(header.alg)) throw new JweInvalidError(`alg ${header.alg} is not accepted for this key (${algorithms.join(', ')})`);
  const cek = header.alg === 'ECDH-ES' ? agreedKey(jwe, header, publicJwk, keyDecryption) : unwrappedKey(jwe, header, publicJwk, keyDecryption);
  try {
    return decryptContent(header.enc, cek, jwe.iv, jwe.ciphertext, jwe.tag, Buffer.from(jwe.protectedSegment, 'ascii'));
  } catch (error) {
    if (error instanceof ContentDecryptionError) throw new JweDecryptionFailedError();
    throw error;
  }
}

function unwrappedKey(jwe: CompactJwe, header: JweHeader, publicJwk: PublicKeyJwk, keyDecryption: KeyDecryption): Buffer {
  if (publicJwk.kty !== 'RSA') throw new JweInvalidError(`alg ${header.alg} needs an RSA key`);
  if (jwe.encryptedKey.length === 0) throw new JweInvalidError(`alg ${header.alg} needs an encrypted key`);
  return keyStep(() => keyDecryption.rsaOaepDecrypt(header.alg === 'RSA-OAEP-256' ? 'sha256' : 'sha1', jwe.encryptedKey));
}

function agreedKey(jwe: CompactJwe, header: JweHeader, publicJwk: PublicKeyJwk, keyDecryption: KeyDecryption): Buffer {
  if (publicJwk.kty !== 'EC') throw new JweInvalidError('alg ECDH-ES needs an EC key');
  // Direct key agreement: the CEK is derived, never sent (RFC 7518 4.6).
  if (jwe.encryptedKey.length !== 0) throw new JweInvalidError('ECDH-ES carries no encrypted key');
  const point = ephemeralPoint(header.epk, publicJwk.crv);
  const partyUInfo = optionalBase64url(header.apu, 'apu');
  const partyVInfo = optionalBase64url(header.apv, 'apv');
  const sharedSecret = keyStep(() => keyDecryption.ecdhSharedSecret(point));
  return concatKdf(sharedSecret, encryptionSpec(header.enc).keyBits, header.enc, partyUInfo, partyVInfo);
}

/** Errors of our own (a mechanism the token refuses) pass; anything else is "decryption failed". */
function keyStep(step: () => Buffer): Buffer {
  try {
    return step();
  } catch (error) {
    if (error instanceof HsmError) throw error;
    throw new JweDecryptionFailedError();
  }
}

/**
 * The sender's ephemeral key, checked before it reaches the token: same curve as ours, exact
 * coordinate lengths, and a point on the curve (an invalid-curve point can leak private key bits).
 */
function ephemeralPoint(epk: unknown, crv: EcCurve): Buffer {
  if (typeof epk !== 'object' || epk === null) throw new JweInvalidError('ECDH-ES needs an epk header parameter');
  const { kty, crv: epkCrv, x, y } = epk as Record<string, unknown>;
  if (kty !== 'EC' || epkCrv !== crv) throw new JweInvalidError(`epk must be an EC key on ${crv}`);
  const size = COORDINATE_BYTES[crv];
  const coordinates = [x, y].map((value) => (typeof value === 'string' && /^[A-Za-z0-9_-]+$/.test(value) ? Buffer.from(value, 'base64url') : undefined));
  if (coordinates.some((value) => value === undefined || value.length !== size)) throw new JweInvalidError(`epk coordinates must be ${size} bytes, base64url`);
  try {
    createPublicKey({ key: { kty: 'EC', crv, x, y } as never, format: 'jwk' });
  } catch {
    throw new JweInvalidError(`epk is not a point on ${crv}`);
  }
  return Buffer.concat([Buffer.from([0x04]), coordinates[0]!, coordinates[1]!]);
}

function optionalBase64url(value: unknown, name: string): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(value)) throw new JweInvalidError(`${name} must be base64url`);
  return Buffer.from(value, 'base64url');
}
