import { createPublicKey, type KeyObject } from 'node:crypto';
import { thumbprintKid } from '../shared/jwks/thumbprint.js';

export type EcCurve = 'P-256' | 'P-384' | 'P-521';

/** The public members of a token key, as the publisher publishes them (no alg, no use). */
export type PublicKeyJwk = { kty: 'RSA'; n: string; e: string } | { kty: 'EC'; crv: EcCurve; x: string; y: string };

/** DER of the curve OIDs in CKA_EC_PARAMS (namedCurve form). */
const CURVE_BY_PARAMS: ReadonlyMap<string, { crv: EcCurve; bytes: number }> = new Map([
  ['06082a8648ce3d030107', { crv: 'P-256', bytes: 32 }],
  ['06052b81040022', { crv: 'P-384', bytes: 48 }],
  ['06052b81040023', { crv: 'P-521', bytes: 66 }],
]);

export function rsaPublicJwk(modulus: Buffer, publicExponent: Buffer): PublicKeyJwk {
  // JWK integers use the fewest octets (RFC 7518 6.3.1): a leading zero would change the kid.
  return { kty: 'RSA', n: minimal(modulus).toString('base64url'), e: minimal(publicExponent).toString('base64url') };
}

/** CKA_EC_PARAMS and CKA_EC_POINT (a DER OCTET STRING around 04||X||Y, or the raw point) to a JWK. */
export function ecPublicJwk(ecParams: Buffer, ecPoint: Buffer): PublicKeyJwk {
  const curve = CURVE_BY_PARAMS.get(ecParams.toString('hex'));
  if (curve === undefined) throw new Error(`unsupported EC parameters ${ecParams.toString('hex')} (P-256, P-384 and P-521 only)`);
  const point = uncompressedPoint(ecPoint, curve.bytes);
  return {
    kty: 'EC',
    crv: curve.crv,
    x: point.subarray(1, 1 + curve.bytes).toString('base64url'),
    y: point.subarray(1 + curve.bytes).toString('base64url'),
  };
}

/** The curve of CKA_EC_PARAMS, or undefined for one we do not support. */
export function curveOfParams(ecParams: Buffer): EcCurve | undefined {
  return CURVE_BY_PARAMS.get(ecParams.toString('hex'))?.crv;
}

/** A public key from CKA_PUBLIC_KEY_INFO (SPKI DER), when the token fills it in. */
export function jwkOfSpki(spki: Buffer): PublicKeyJwk {
  const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  if (jwk.kty === 'RSA' && jwk.n !== undefined && jwk.e !== undefined) return { kty: 'RSA', n: jwk.n, e: jwk.e };
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384' || jwk.crv === 'P-521') && jwk.x !== undefined && jwk.y !== undefined) {
    return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
  }
  throw new Error(`unsupported public key type ${String(jwk.kty)}`);
}

export function publicKeyObject(jwk: PublicKeyJwk): KeyObject {
  return createPublicKey({ key: jwk, format: 'jwk' });
}

/** The kid the publisher gives this key: its RFC 7638 thumbprint, the same function it uses. */
export function kidOf(jwk: PublicKeyJwk): Promise<string> {
  return thumbprintKid(jwk);
}

function minimal(integer: Buffer): Buffer {
  let start = 0;
  while (start < integer.length - 1 && integer[start] === 0) start += 1;
  return integer.subarray(start);
}

function uncompressedPoint(value: Buffer, coordinateBytes: number): Buffer {
  const length = 1 + 2 * coordinateBytes;
  if (value.length === length && value[0] === 0x04) return value;
  // DER OCTET STRING: tag 04, then a short (< 128) or long-form (81 xx) length.
  if (value[0] === 0x04) {
    const header = value[1] === 0x81 ? 3 : 2;
    const declared = value[1] === 0x81 ? value[2] : value[1];
    const inner = value.subarray(header);
    if (declared === length && inner.length === length && inner[0] === 0x04) return inner;
  }
  throw new Error(`CKA_EC_POINT is not an uncompressed point of ${length} bytes`);
}
