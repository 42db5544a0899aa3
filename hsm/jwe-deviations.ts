/**
 * Departures from RFC 7518 that partners' JOSE libraries make, accepted because they change how a
 * value is written and not what it is (see README, "Partners' JOSE libraries"). Each accepted one
 * is reported with the decrypted message, so the bank can ask the partner to fix its library
 * instead of refusing its messages at random.
 */
export const JWE_DEVIATIONS = [
  /** An epk coordinate shorter than the curve's size: leading zero bytes dropped (Authlib 1.2). RFC 7518 6.2.1.2 wants full length. */
  'epk-coordinates-unpadded',
  /** The epk is a string holding the JWK's JSON (Crypt::JWT 0.034). RFC 7518 4.6.1.1 wants a JSON object. */
  'epk-as-json-string',
  /** An AES-GCM IV longer than 96 bits (python-jose 3.3: 128 bits). RFC 7518 5.3 wants 96 bits. */
  'gcm-iv-not-96-bits',
] as const;

export type JweDeviation = (typeof JWE_DEVIATIONS)[number];
