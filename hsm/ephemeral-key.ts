import { createPublicKey } from 'node:crypto';
import { JweInvalidError } from './errors.js';
import type { JweDeviation } from './jwe-deviations.js';
import type { EcCurve } from './public-jwk.js';

const COORDINATE_BYTES: Readonly<Record<EcCurve, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The sender's ephemeral public point (04||X||Y, full length) and how its epk departed from RFC 7518. */
export interface EphemeralKey {
  readonly point: Buffer;
  readonly deviations: readonly JweDeviation[];
}

/**
 * The epk header parameter's members: a JSON object, or a string holding one (Crypt::JWT sends
 * that). Undefined when it is neither.
 */
export function epkMembers(epk: unknown): { readonly members: Record<string, unknown>; readonly asString: boolean } | undefined {
  let value = epk;
  if (typeof epk === 'string') {
    try {
      value = JSON.parse(epk);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return { members: value as Record<string, unknown>, asString: typeof epk === 'string' };
}

/**
 * The sender's ephemeral key, checked before it reaches the token: same curve as ours, coordinates
 * no longer than the curve's size (shorter ones are left-padded: leading zero bytes dropped), and
 * a point on the curve (an invalid-curve point can leak private key bits).
 */
export function ephemeralKey(epk: unknown, crv: EcCurve): EphemeralKey {
  const parsed = epkMembers(epk);
  if (parsed === undefined) throw new JweInvalidError('ECDH-ES needs an epk header parameter (an EC public JWK)');
  const { kty, crv: epkCrv, x, y } = parsed.members;
  if (kty !== 'EC' || epkCrv !== crv) throw new JweInvalidError(`epk must be an EC key on ${crv}`);
  const size = COORDINATE_BYTES[crv];
  const sent = [x, y].map((value) => (typeof value === 'string' && BASE64URL.test(value) && value.length % 4 !== 1 ? Buffer.from(value, 'base64url') : undefined));
  // Never longer: a leading zero byte too many is not a writing habit we know, and stays refused.
  if (sent.some((value) => value === undefined || value.length === 0 || value.length > size)) throw new JweInvalidError(`epk coordinates must be ${size} bytes, base64url`);
  const [fullX, fullY] = sent.map((value) => Buffer.concat([Buffer.alloc(size - value!.length), value!])) as [Buffer, Buffer];
  try {
    createPublicKey({ key: { kty: 'EC', crv, x: fullX.toString('base64url'), y: fullY.toString('base64url') }, format: 'jwk' });
  } catch {
    throw new JweInvalidError(`epk is not a point on ${crv}`);
  }
  const deviations: JweDeviation[] = [];
  if (sent.some((value) => value!.length < size)) deviations.push('epk-coordinates-unpadded');
  if (parsed.asString) deviations.push('epk-as-json-string');
  return { point: Buffer.concat([Buffer.from([0x04]), fullX, fullY]), deviations };
}
