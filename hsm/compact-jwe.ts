import { JweInvalidError } from './errors.js';
import { isContentEncryption, type ContentEncryption } from './content-decryption.js';

export const KEY_MANAGEMENT_ALGORITHMS = ['RSA-OAEP', 'RSA-OAEP-256', 'ECDH-ES'] as const;
export type KeyManagementAlgorithm = (typeof KEY_MANAGEMENT_ALGORITHMS)[number];

export interface JweHeader {
  readonly alg: KeyManagementAlgorithm;
  readonly enc: ContentEncryption;
  readonly kid?: string;
  readonly [member: string]: unknown;
}

/** The five parts of a compact JWE (RFC 7516 7.1), decoded, and the header as sent (the AAD). */
export interface CompactJwe {
  readonly header: JweHeader;
  readonly protectedSegment: string;
  readonly encryptedKey: Buffer;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const MAX_HEADER_BYTES = 8 * 1024;

/** Parses and checks the structure; says what is wrong in terms safe to return to the sender. */
export function parseCompactJwe(jwe: string, maxBytes: number): CompactJwe {
  if (typeof jwe !== 'string') throw new JweInvalidError('a compact JWE is a string');
  if (jwe.length > maxBytes) throw new JweInvalidError(`the JWE is over ${maxBytes} bytes`);
  const parts = jwe.split('.');
  if (parts.length !== 5) throw new JweInvalidError(`a compact JWE has 5 parts, this one has ${parts.length}`);
  const [protectedSegment, encryptedKey, iv, ciphertext, tag] = parts as [string, string, string, string, string];
  for (const [name, part] of [['protected header', protectedSegment], ['encrypted key', encryptedKey], ['iv', iv], ['ciphertext', ciphertext], ['tag', tag]] as const) {
    // A length of 1 mod 4 encodes nothing: Buffer would drop the character and accept it.
    if (!BASE64URL.test(part) || part.length % 4 === 1) throw new JweInvalidError(`the ${name} is not base64url`);
  }
  if (protectedSegment.length > MAX_HEADER_BYTES) throw new JweInvalidError('the protected header is too large');
  return {
    header: parseHeader(protectedSegment),
    protectedSegment,
    encryptedKey: Buffer.from(encryptedKey, 'base64url'),
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
}

function parseHeader(segment: string): JweHeader {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new JweInvalidError('the protected header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new JweInvalidError('the protected header is not a JSON object');
  const members = header as Record<string, unknown>;
  if (!(KEY_MANAGEMENT_ALGORITHMS as readonly unknown[]).includes(members.alg)) {
    throw new JweInvalidError(`alg ${JSON.stringify(members.alg)} is not accepted (${KEY_MANAGEMENT_ALGORITHMS.join(', ')})`);
  }
  if (!isContentEncryption(members.enc)) throw new JweInvalidError(`enc ${JSON.stringify(members.enc)} is not supported`);
  // No extension is understood here, so any critical one must be refused (RFC 7516 4.1.13).
  if (members.crit !== undefined) throw new JweInvalidError('crit header parameters are not supported');
  // Compression before encryption leaks the plaintext's content through its length (and jose 6 dropped it).
  if (members.zip !== undefined) throw new JweInvalidError('compressed (zip) JWEs are not accepted');
  if (members.kid !== undefined && typeof members.kid !== 'string') throw new JweInvalidError('kid must be a string');
  return members as JweHeader;
}
