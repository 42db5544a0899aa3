import { createHash } from 'node:crypto';

/**
 * The Concat KDF of NIST SP 800-56A with SHA-256, as JWA uses it for ECDH-ES (RFC 7518 4.6.2).
 * Runs outside the token: the token derives only the shared secret Z.
 */
export function concatKdf(sharedSecret: Buffer, keyBits: number, algorithmId: string, partyUInfo: Buffer, partyVInfo: Buffer): Buffer {
  const otherInfo = Buffer.concat([lengthPrefixed(Buffer.from(algorithmId, 'utf8')), lengthPrefixed(partyUInfo), lengthPrefixed(partyVInfo), uint32(keyBits)]);
  const rounds = Math.ceil(keyBits / 256);
  const output: Buffer[] = [];
  for (let counter = 1; counter <= rounds; counter++) {
    output.push(createHash('sha256').update(uint32(counter)).update(sharedSecret).update(otherInfo).digest());
  }
  return Buffer.concat(output).subarray(0, keyBits / 8);
}

function lengthPrefixed(data: Buffer): Buffer {
  return Buffer.concat([uint32(data.length), data]);
}

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}
