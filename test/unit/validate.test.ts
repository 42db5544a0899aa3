import { KeySetRefusedError, type RefusalReason } from '../../shared/jwks/errors.js';
import { serializeKeySet } from '../../shared/jwks/serialize.js';
import { validateKeySet, validateSingleJwk } from '../../shared/jwks/validate.js';
import { ecKey, privateJwk, rsaKey, type TestKey } from '../support/keys.js';

let rsaSig: TestKey;
let ecSig: TestKey;
let rsaEnc: TestKey;

beforeAll(async () => {
  [rsaSig, ecSig, rsaEnc] = await Promise.all([rsaKey('sig'), ecKey('P-384'), rsaKey('enc')]);
});

function bytes(document: unknown): Buffer {
  return Buffer.from(JSON.stringify(document));
}

function refusal(document: unknown): KeySetRefusedError {
  try {
    validateKeySet(Buffer.isBuffer(document) ? document : bytes(document));
  } catch (error) {
    if (error instanceof KeySetRefusedError) return error;
    throw error;
  }
  throw new Error('the set was accepted');
}

describe('validateKeySet', () => {
  it('accepts a set of public RSA and EC keys and returns them in order', () => {
    const keys = [rsaSig.jwk, ecSig.jwk, rsaEnc.jwk];
    expect(validateKeySet(serializeKeySet(keys)).keys.map((key) => key.kid)).toEqual(
      [...keys].map((key) => key.kid).sort(),
    );
  });

  it('accepts an empty set (the publisher guards against publishing one)', () => {
    expect(validateKeySet(bytes({ keys: [] })).keys).toEqual([]);
  });

  it.each(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'])('refuses a key carrying the private member "%s" as a security event', (member) => {
    const leaked = { ...rsaSig.jwk, [member]: 'AQAB' };
    const error = refusal({ keys: [ecSig.jwk, leaked] });
    expect(error.reason).toBe('private_key_material');
    expect(error.security).toBe(true);
    expect(error.message).toContain(`"${member}"`);
    expect(error.message).not.toContain('AQAB');
  });

  it('refuses a real private JWK and never echoes its private values', () => {
    const leaked = privateJwk(rsaSig);
    const error = refusal({ keys: [leaked] });
    expect(error.reason).toBe('private_key_material');
    expect(error.message).not.toContain(String(leaked.d));
  });

  it('reports private material even when an earlier key is broken in another way', () => {
    expect(refusal({ keys: [{ kty: 'RSA' }, privateJwk(ecSig)] }).reason).toBe('private_key_material');
  });

  it('refuses a symmetric key as private material', () => {
    expect(refusal({ keys: [{ kty: 'oct', kid: 'abc', use: 'sig', alg: 'HS256' }] }).reason).toBe('private_key_material');
  });

  const cases: [string, () => unknown, RefusalReason][] = [
    ['a duplicate kid', () => ({ keys: [rsaSig.jwk, rsaSig.jwk] }), 'duplicate_kid'],
    ['a missing use', () => ({ keys: [{ ...rsaSig.jwk, use: undefined }] }), 'invalid_use'],
    ['a use other than sig or enc', () => ({ keys: [{ ...rsaSig.jwk, use: 'both' }] }), 'invalid_use'],
    ['a missing alg', () => ({ keys: [{ ...rsaSig.jwk, alg: undefined }] }), 'invalid_alg'],
    ['an alg that does not fit the key type', () => ({ keys: [{ ...rsaSig.jwk, alg: 'ES256' }] }), 'invalid_alg'],
    ['an encryption alg on a signing key', () => ({ keys: [{ ...rsaSig.jwk, alg: 'RSA-OAEP' }] }), 'invalid_alg'],
    ['an EC alg that does not fit the curve', () => ({ keys: [{ ...ecSig.jwk, alg: 'ES256' }] }), 'invalid_alg'],
    ['a missing kid', () => ({ keys: [{ ...rsaSig.jwk, kid: undefined }] }), 'invalid_kid'],
    ['a kid with a dot', () => ({ keys: [{ ...rsaSig.jwk, kid: '../jwks' }] }), 'invalid_kid'],
    ['a kid over 128 characters', () => ({ keys: [{ ...rsaSig.jwk, kid: 'a'.repeat(129) }] }), 'invalid_kid'],
    ['a member outside the allowlist', () => ({ keys: [{ ...rsaSig.jwk, x5u: 'https://evil.example' }] }), 'unexpected_member'],
    ['an unknown kty', () => ({ keys: [{ ...rsaSig.jwk, kty: 'XYZ' }] }), 'unsupported_kty'],
    ['a modulus that is not base64url', () => ({ keys: [{ ...rsaSig.jwk, n: 'not base64url!' }] }), 'invalid_key_material'],
    ['a point that is not on the curve', () => ({ keys: [{ ...ecSig.jwk, y: ecSig.jwk.kty === 'EC' ? ecSig.jwk.x : '' }] }), 'invalid_key_material'],
    ['an unsupported curve', () => ({ keys: [{ ...ecSig.jwk, crv: 'secp256k1' }] }), 'invalid_key_material'],
    ['a set that is an array', () => [rsaSig.jwk], 'invalid_shape'],
    ['a set without keys', () => ({ key: [] }), 'invalid_shape'],
    ['a set with another top-level member', () => ({ keys: [], extra: 1 }), 'invalid_shape'],
    ['a key that is not an object', () => ({ keys: ['RSA'] }), 'invalid_shape'],
  ];
  it.each(cases)('refuses %s', (_name, document, reason) => {
    const error = refusal(document());
    expect(error.reason).toBe(reason);
    expect(error.security).toBe(false);
  });

  it('refuses an RSA key under 2048 bits', async () => {
    const weak = await rsaKey('sig', 'RS256', 1024);
    expect(refusal({ keys: [weak.jwk] }).reason).toBe('weak_key');
  });

  it('refuses truncated JSON, as left by a non-atomic writer', () => {
    const whole = serializeKeySet([rsaSig.jwk, ecSig.jwk]);
    expect(refusal(whole.subarray(0, whole.length - 7)).reason).toBe('malformed_json');
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(refusal(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])).reason).toBe('not_utf8');
  });
});

describe('validateSingleJwk', () => {
  it('accepts one public key and refuses a private one', () => {
    expect(validateSingleJwk(bytes(ecSig.jwk)).kid).toBe(ecSig.jwk.kid);
    expect(() => validateSingleJwk(bytes(privateJwk(ecSig)))).toThrow(KeySetRefusedError);
  });
});
