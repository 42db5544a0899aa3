import { constants, createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';
import pkcs11js from 'pkcs11js';
import { compactJws, protectedHeader, signingInput } from '../../hsm/compact-jws.js';
import { SIGNING_ALGORITHMS, SIGNING_MECHANISMS, isSigningAlgorithm, signatureLength, type SigningAlgorithm } from '../../hsm/signing-algorithms.js';
import type { EcCurve } from '../../hsm/public-jwk.js';

/**
 * JWS below the PKCS#11 token: the signatures are made by node:crypto the way the token makes
 * them, and the module's mechanism table, digests, checks and serialization are tested on them.
 */

type Scheme = 'pkcs1' | 'pss' | 'ecdsa';

interface Expected {
  readonly kty: 'RSA' | 'EC';
  readonly crv?: EcCurve;
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly scheme: Scheme;
  readonly mechanism: pkcs11js.Mechanism;
}

function pss(mechanism: number, hashAlg: number, mgf: number, saltLen: number): pkcs11js.Mechanism {
  const parameter: pkcs11js.RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg, mgf, saltLen };
  return { mechanism, parameter };
}

/** RFC 7518 3.1 to 3.5, written out here rather than taken from the module's table. */
const EXPECTED: Readonly<Record<SigningAlgorithm, Expected>> = {
  RS256: { kty: 'RSA', hash: 'sha256', scheme: 'pkcs1', mechanism: { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS } },
  RS384: { kty: 'RSA', hash: 'sha384', scheme: 'pkcs1', mechanism: { mechanism: pkcs11js.CKM_SHA384_RSA_PKCS } },
  RS512: { kty: 'RSA', hash: 'sha512', scheme: 'pkcs1', mechanism: { mechanism: pkcs11js.CKM_SHA512_RSA_PKCS } },
  PS256: { kty: 'RSA', hash: 'sha256', scheme: 'pss', mechanism: pss(pkcs11js.CKM_SHA256_RSA_PKCS_PSS, pkcs11js.CKM_SHA256, pkcs11js.CKG_MGF1_SHA256, 32) },
  PS384: { kty: 'RSA', hash: 'sha384', scheme: 'pss', mechanism: pss(pkcs11js.CKM_SHA384_RSA_PKCS_PSS, pkcs11js.CKM_SHA384, pkcs11js.CKG_MGF1_SHA384, 48) },
  PS512: { kty: 'RSA', hash: 'sha512', scheme: 'pss', mechanism: pss(pkcs11js.CKM_SHA512_RSA_PKCS_PSS, pkcs11js.CKM_SHA512, pkcs11js.CKG_MGF1_SHA512, 64) },
  ES256: { kty: 'EC', crv: 'P-256', hash: 'sha256', scheme: 'ecdsa', mechanism: { mechanism: pkcs11js.CKM_ECDSA } },
  ES384: { kty: 'EC', crv: 'P-384', hash: 'sha384', scheme: 'ecdsa', mechanism: { mechanism: pkcs11js.CKM_ECDSA } },
  ES512: { kty: 'EC', crv: 'P-521', hash: 'sha512', scheme: 'ecdsa', mechanism: { mechanism: pkcs11js.CKM_ECDSA } },
};

const HASH_BYTES = { sha256: 32, sha384: 48, sha512: 64 } as const;

interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  /** Modulus length (RSA) or coordinate length (EC), in bytes, from the public JWK. */
  readonly keyBytes: number;
}

function keyPair(pair: { publicKey: KeyObject; privateKey: KeyObject }): KeyPair {
  const jwk = pair.publicKey.export({ format: 'jwk' });
  return { ...pair, keyBytes: Buffer.from(jwk.kty === 'RSA' ? jwk.n! : jwk.x!, 'base64url').length };
}

const KEYS: Readonly<Record<'RSA' | EcCurve, KeyPair>> = {
  RSA: keyPair(generateKeyPairSync('rsa', { modulusLength: 2048 })),
  'P-256': keyPair(generateKeyPairSync('ec', { namedCurve: 'P-256' })),
  'P-384': keyPair(generateKeyPairSync('ec', { namedCurve: 'P-384' })),
  'P-521': keyPair(generateKeyPairSync('ec', { namedCurve: 'P-521' })),
};

const keyFor = (alg: SigningAlgorithm): KeyPair => KEYS[EXPECTED[alg].crv ?? 'RSA'];

/**
 * The signature the token returns: RSA mechanisms hash and pad the input themselves; CKM_ECDSA
 * signs the digest it is given, which is what signing the input with that hash amounts to.
 */
function tokenSignature(alg: SigningAlgorithm, input: Buffer): Buffer {
  const { hash, scheme } = EXPECTED[alg];
  const key = keyFor(alg).privateKey;
  switch (scheme) {
    case 'pkcs1':
      return sign(hash, input, { key, padding: constants.RSA_PKCS1_PADDING });
    case 'pss':
      return sign(hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_BYTES[hash] });
    case 'ecdsa':
      return sign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
  }
}

function flipBit(signature: Buffer, at: number): Buffer {
  const flipped = Buffer.from(signature);
  flipped[at]! ^= 0x01;
  return flipped;
}

const PAYLOAD = Buffer.from(JSON.stringify({ sub: 'payment-42', amount: '100.00', iat: 1_700_000_000 }));

describe('SIGNING_MECHANISMS below the token', () => {
  it('covers exactly the nine JWS algorithms of RFC 7518 with RSA and EC keys', () => {
    expect([...SIGNING_ALGORITHMS].sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(Object.keys(SIGNING_MECHANISMS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(SIGNING_ALGORITHMS)('%s: key type, curve and PKCS#11 mechanism (with its PSS parameters)', (alg) => {
    const spec = SIGNING_MECHANISMS[alg];
    const expected = EXPECTED[alg];
    expect(spec.kty).toBe(expected.kty);
    expect(spec.crv).toBe(expected.crv);
    expect(spec.mechanism).toEqual(expected.mechanism);
  });

  it.each(SIGNING_ALGORITHMS)('%s: the token is given the signing input (RSA) or its digest with the right hash (ECDSA)', (alg) => {
    const input = Buffer.from(signingInput(protectedHeader(alg, 'kid-1'), PAYLOAD), 'ascii');
    const { scheme, hash } = EXPECTED[alg];
    const expected = scheme === 'ecdsa' ? createHash(hash).update(input).digest() : input;
    expect(SIGNING_MECHANISMS[alg].toSign(input)).toEqual(expected);
    if (scheme === 'ecdsa') expect(SIGNING_MECHANISMS[alg].toSign(input)).toHaveLength(HASH_BYTES[hash]);
  });

  it.each(SIGNING_ALGORITHMS)('%s: a signature as the token makes it verifies, has signatureLength bytes, and jose verifies the compact JWS', async (alg) => {
    const spec = SIGNING_MECHANISMS[alg];
    const key = keyFor(alg);
    const header = protectedHeader(alg, 'kid-of-the-key', { typ: 'JWT' });
    const input = signingInput(header, PAYLOAD);
    const signature = tokenSignature(alg, Buffer.from(input, 'ascii'));
    expect(spec.verify(key.publicKey, Buffer.from(input, 'ascii'), signature)).toBe(true);
    expect(signature).toHaveLength(signatureLength(spec.kty, key.keyBytes));
    const verified = await compactVerify(compactJws(input, signature), key.publicKey, { algorithms: [alg] });
    expect(verified.protectedHeader).toEqual({ alg, kid: 'kid-of-the-key', typ: 'JWT' });
    expect(Buffer.from(verified.payload)).toEqual(PAYLOAD);
  });

  it.each(SIGNING_ALGORITHMS)('%s: verify rejects one flipped bit, another input, and a signature of the other scheme or hash', (alg) => {
    const spec = SIGNING_MECHANISMS[alg];
    const { publicKey } = keyFor(alg);
    const input = Buffer.from(signingInput(protectedHeader(alg, 'kid-1'), PAYLOAD), 'ascii');
    const signature = tokenSignature(alg, input);
    for (const at of [0, signature.length >> 1, signature.length - 1]) expect(spec.verify(publicKey, input, flipBit(signature, at))).toBe(false);
    expect(spec.verify(publicKey, Buffer.from(signingInput(protectedHeader(alg, 'kid-2'), PAYLOAD), 'ascii'), signature)).toBe(false);
    // Same key, another algorithm: RS and PS with the same hash swap schemes; ES on P-256 also signs with SHA-384.
    const other: Partial<Record<SigningAlgorithm, SigningAlgorithm>> = { RS256: 'PS256', RS384: 'PS384', RS512: 'PS512', PS256: 'RS256', PS384: 'RS384', PS512: 'RS512', ES256: 'ES384' };
    const otherAlg = other[alg];
    if (otherAlg === undefined) return;
    const foreign = EXPECTED[otherAlg].scheme === 'ecdsa' ? sign(EXPECTED[otherAlg].hash, input, { key: keyFor(alg).privateKey, dsaEncoding: 'ieee-p1363' }) : tokenSignature(otherAlg, input);
    expect(spec.verify(publicKey, input, foreign)).toBe(false);
  });

  it.each(['PS256', 'PS384', 'PS512'] as const)('%s: verify wants the salt as long as the hash (RFC 7518 3.5), as the token makes it', (alg) => {
    const input = Buffer.from('header.payload', 'ascii');
    const { hash } = EXPECTED[alg];
    const withSalt = (saltLength: number): Buffer => sign(hash, input, { key: KEYS.RSA.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
    expect(SIGNING_MECHANISMS[alg].verify(KEYS.RSA.publicKey, input, withSalt(HASH_BYTES[hash]))).toBe(true);
    expect(SIGNING_MECHANISMS[alg].verify(KEYS.RSA.publicKey, input, withSalt(0))).toBe(false);
    expect(SIGNING_MECHANISMS[alg].verify(KEYS.RSA.publicKey, input, withSalt(20))).toBe(false);
  });

  it('isSigningAlgorithm knows the nine and nothing else', () => {
    for (const alg of SIGNING_ALGORITHMS) expect(isSigningAlgorithm(alg)).toBe(true);
    for (const other of ['HS256', 'none', 'EdDSA', 'rs256', 'RS1', 'ES256K', '', undefined, null, 256]) expect(isSigningAlgorithm(other)).toBe(false);
  });

  it.each([
    ['RSA', 256, 256],
    ['RSA', 384, 384],
    ['RSA', 512, 512],
    ['EC', 32, 64],
    ['EC', 48, 96],
    ['EC', 66, 132],
  ] as const)('signatureLength(%s, %d) is %d bytes', (kty, keyBytes, length) => {
    expect(signatureLength(kty, keyBytes)).toBe(length);
  });
});

describe('compact JWS serialization', () => {
  it.each(['alg', 'kid', 'jku', 'jwk', 'x5u', 'x5c', 'crit', 'b64'])('protectedHeader refuses the reserved member %s', (member) => {
    const build = (): unknown => protectedHeader('ES256', 'kid-1', { typ: 'JWT', [member]: member === 'b64' ? false : 'someone-else' });
    expect(build).toThrow(TypeError);
    expect(build).toThrow(`the header member "${member}" is set by the signer or not supported`);
  });

  it('protectedHeader keeps every other member, with alg and kid from the signer', () => {
    const extra = { typ: 'JWT', cty: 'text/plain', 'x-bank-ref': 7, nested: { kid: 'inside is fine' }, x5t: 'thumb', Alg: 'case matters' };
    expect(protectedHeader('PS256', 'kid-1', extra)).toEqual({ ...extra, alg: 'PS256', kid: 'kid-1' });
    expect(protectedHeader('ES384', 'kid-2')).toEqual({ alg: 'ES384', kid: 'kid-2' });
  });

  it('signingInput is base64url(header JSON) "." base64url(payload), any payload bytes', () => {
    const header = protectedHeader('RS256', 'kid-1', { cty: 'application/octet-stream' });
    const payload = Buffer.from([0x00, 0xff, 0xfe, 0x2e, 0x3d, 0x2b, 0x2f]);
    const input = signingInput(header, payload);
    expect(input).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const [encodedHeader, encodedPayload] = input.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8'))).toEqual(header);
    expect(Buffer.from(encodedPayload, 'base64url')).toEqual(payload);
    expect(compactJws(input, Buffer.from([0xfb, 0xff]))).toBe(`${input}.-_8`);
  });

  it('jose verifies a JWS of a binary payload and rejects it with a flipped signature bit', async () => {
    const payload = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    const input = signingInput(protectedHeader('ES256', 'kid-1'), payload);
    const signature = tokenSignature('ES256', Buffer.from(input, 'ascii'));
    expect(Buffer.from((await compactVerify(compactJws(input, signature), KEYS['P-256'].publicKey)).payload)).toEqual(payload);
    await expect(compactVerify(compactJws(input, flipBit(signature, 10)), KEYS['P-256'].publicKey)).rejects.toThrow('signature verification failed');
  });
});
