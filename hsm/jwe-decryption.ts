import { concatKdf } from './concat-kdf.js';
import { ContentDecryptionError, decryptContent, encryptionSpec } from './content-decryption.js';
import type { CompactJwe, JweHeader, KeyManagementAlgorithm } from './compact-jwe.js';
import { ephemeralKey } from './ephemeral-key.js';
import { HsmError, JweDecryptionFailedError, JweInvalidError } from './errors.js';
import type { JweDeviation } from './jwe-deviations.js';
import type { PublicKeyJwk } from './public-jwk.js';

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

/** The plaintext, and the departures from RFC 7518 that were accepted to get it. */
export interface DecryptedContent {
  readonly plaintext: Buffer;
  readonly deviations: readonly JweDeviation[];
}

/**
 * Decrypts a parsed compact JWE with a key pair whose public half is `publicJwk`. Malformed
 * input is a JweInvalidError (safe to tell the sender); every failure that depends on the
 * ciphertext or key is the same JweDecryptionFailedError.
 */
export function decryptJwe(jwe: CompactJwe, publicJwk: PublicKeyJwk, keyDecryption: KeyDecryption, algorithms: readonly KeyManagementAlgorithm[]): DecryptedContent {
  const { header } = jwe;
  if (!algorithms.includes(header.alg)) throw new JweInvalidError(`alg ${header.alg} is not accepted for this key (${algorithms.join(', ')})`);
  const { cek, deviations } = header.alg === 'ECDH-ES' ? agreedKey(jwe, header, publicJwk, keyDecryption) : { cek: unwrappedKey(jwe, header, publicJwk, keyDecryption), deviations: [] };
  try {
    const plaintext = decryptContent(header.enc, cek, jwe.iv, jwe.ciphertext, jwe.tag, Buffer.from(jwe.protectedSegment, 'ascii'));
    // Reported only with a plaintext: a forged message adds nothing to the partner's count.
    const ivDeviation: JweDeviation[] = jwe.iv.length === encryptionSpec(header.enc).ivBytes ? [] : ['gcm-iv-not-96-bits'];
    return { plaintext, deviations: [...deviations, ...ivDeviation] };
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

function agreedKey(jwe: CompactJwe, header: JweHeader, publicJwk: PublicKeyJwk, keyDecryption: KeyDecryption): { cek: Buffer; deviations: readonly JweDeviation[] } {
  if (publicJwk.kty !== 'EC') throw new JweInvalidError('alg ECDH-ES needs an EC key');
  // Direct key agreement: the CEK is derived, never sent (RFC 7518 4.6).
  if (jwe.encryptedKey.length !== 0) throw new JweInvalidError('ECDH-ES carries no encrypted key');
  const { point, deviations } = ephemeralKey(header.epk, publicJwk.crv);
  const partyUInfo = optionalBase64url(header.apu, 'apu');
  const partyVInfo = optionalBase64url(header.apv, 'apv');
  const sharedSecret = keyStep(() => keyDecryption.ecdhSharedSecret(point));
  return { cek: concatKdf(sharedSecret, encryptionSpec(header.enc).keyBits, header.enc, partyUInfo, partyVInfo), deviations };
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

function optionalBase64url(value: unknown, name: string): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(value)) throw new JweInvalidError(`${name} must be base64url`);
  return Buffer.from(value, 'base64url');
}
