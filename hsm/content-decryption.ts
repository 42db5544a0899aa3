import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';

export const CONTENT_ENCRYPTIONS = ['A128GCM', 'A192GCM', 'A256GCM', 'A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512'] as const;
export type ContentEncryption = (typeof CONTENT_ENCRYPTIONS)[number];

interface EncryptionSpec {
  /** CEK length in bits (for CBC-HS: MAC key and encryption key together). */
  readonly keyBits: number;
  /** The IV length RFC 7518 says, and the longest accepted (see GCM_IV). */
  readonly ivBytes: number;
  readonly maxIvBytes: number;
  readonly tagBytes: number;
}

/**
 * AES-GCM IVs: RFC 7518 5.3 says 96 bits, SP 800-38D allows other lengths (the IV is then hashed
 * into the first counter block). Accepted from 96 bits, the least SP 800-38D 8.2.2 allows for a
 * random IV (what JWE senders use), to 1024 bits, the most OpenSSL (node:crypto) takes; the CEK
 * is used for one message, so a longer IV costs nothing. python-jose 3.3 sends 128 bits.
 */
const GCM_IV = { ivBytes: 12, maxIvBytes: 128 } as const;
const CBC_IV = { ivBytes: 16, maxIvBytes: 16 } as const;

const SPECS: Readonly<Record<ContentEncryption, EncryptionSpec>> = {
  A128GCM: { keyBits: 128, ...GCM_IV, tagBytes: 16 },
  A192GCM: { keyBits: 192, ...GCM_IV, tagBytes: 16 },
  A256GCM: { keyBits: 256, ...GCM_IV, tagBytes: 16 },
  'A128CBC-HS256': { keyBits: 256, ...CBC_IV, tagBytes: 16 },
  'A192CBC-HS384': { keyBits: 384, ...CBC_IV, tagBytes: 24 },
  'A256CBC-HS512': { keyBits: 512, ...CBC_IV, tagBytes: 32 },
};

export function isContentEncryption(value: unknown): value is ContentEncryption {
  return typeof value === 'string' && (CONTENT_ENCRYPTIONS as readonly string[]).includes(value);
}

export function encryptionSpec(enc: ContentEncryption): EncryptionSpec {
  return SPECS[enc];
}

/** Thrown for every failure, so callers cannot tell a bad tag from a bad padding. */
export class ContentDecryptionError extends Error {
  override readonly name = 'ContentDecryptionError';
}

/** RFC 7518 5.2 (AES-CBC with HMAC-SHA2) and 5.3 (AES-GCM). */
export function decryptContent(enc: ContentEncryption, cek: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const spec = SPECS[enc];
  if (cek.length * 8 !== spec.keyBits || iv.length < spec.ivBytes || iv.length > spec.maxIvBytes || tag.length !== spec.tagBytes) throw new ContentDecryptionError();
  try {
    return enc.endsWith('GCM') ? decryptGcm(cek, iv, ciphertext, tag, aad) : decryptCbcHmac(spec, cek, iv, ciphertext, tag, aad);
  } catch {
    throw new ContentDecryptionError();
  }
}

function decryptGcm(cek: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const algorithm = `aes-${cek.length * 8}-gcm` as 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
  const decipher = createDecipheriv(algorithm, cek, iv, { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

function decryptCbcHmac(spec: EncryptionSpec, cek: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const half = cek.length / 2;
  const macKey = cek.subarray(0, half);
  const encKey = cek.subarray(half);
  const aadBits = Buffer.alloc(8);
  aadBits.writeBigUInt64BE(BigInt(aad.length) * 8n);
  const mac = createHmac(`sha${spec.keyBits}`, macKey).update(aad).update(iv).update(ciphertext).update(aadBits).digest();
  // The tag is checked first, in constant time: nothing is decrypted for a forged message.
  if (!timingSafeEqual(mac.subarray(0, spec.tagBytes), tag)) throw new ContentDecryptionError();
  const decipher = createDecipheriv(`aes-${half * 8}-cbc`, encKey, iv);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}
