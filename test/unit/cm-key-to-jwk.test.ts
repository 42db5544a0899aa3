import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { convertCmKey, type Conversion } from '../../shared/publisher/cm-key-to-jwk.js';
import { PUBLIC_MEMBERS_BY_KTY } from '../../shared/jwks/members.js';
import { ENCRYPT_DECRYPT, SIGN_VERIFY, cmKey, ecCmKey, rsaCmKey } from '../support/cm-keys.js';

function converted(conversion: Conversion): Extract<Conversion, { kind: 'converted' }> {
  if (conversion.kind !== 'converted') throw new Error(`expected a conversion, got ${JSON.stringify(conversion)}`);
  return conversion;
}

function skipReason(conversion: Conversion): string {
  if (conversion.kind !== 'skipped') throw new Error(`expected a skip, got ${conversion.kind}`);
  return conversion.reason;
}

describe('convertCmKey', () => {
  it.each(['pkcs1', 'spki'] as const)('converts an RSA signing key given as %s PEM, with RS256 and the RFC 7638 kid', async (format) => {
    const fixture = rsaCmKey({ format });
    const { jwk } = converted(await convertCmKey(fixture.key));
    const expected = fixture.publicKey.export({ format: 'jwk' });
    expect(jwk).toEqual({ kty: 'RSA', n: expected.n, e: expected.e, kid: await calculateJwkThumbprint({ kty: 'RSA', n: expected.n!, e: expected.e! }), use: 'sig', alg: 'RS256' });
  });

  it.each([
    ['prime256v1', 'P-256', 'ES256'],
    ['secp384r1', 'P-384', 'ES384'],
    ['secp521r1', 'P-521', 'ES512'],
  ])('converts an EC %s signing key to %s / %s', async (curve, crv, alg) => {
    const fixture = ecCmKey(curve);
    const { jwk } = converted(await convertCmKey(fixture.key));
    const expected = fixture.publicKey.export({ format: 'jwk' });
    expect(jwk).toMatchObject({ kty: 'EC', crv, alg, use: 'sig', x: expected.x, y: expected.y });
    expect(jwk.kid).toBe(await calculateJwkThumbprint({ kty: 'EC', crv, x: expected.x!, y: expected.y! }));
  });

  it('gives the same kid for the same key whatever CM calls it (kid depends on the material alone)', async () => {
    const fixture = rsaCmKey({ format: 'pkcs1' });
    const spki = fixture.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const renamed = { ...fixture.key, id: 'other-id', name: 'other-name', version: 7, publickey: spki };
    expect(converted(await convertCmKey(renamed)).jwk.kid).toBe(converted(await convertCmKey(fixture.key)).jwk.kid);
  });

  it('uses RSA-OAEP-256 and ECDH-ES for encryption keys', async () => {
    expect(converted(await convertCmKey(rsaCmKey({ usageMask: ENCRYPT_DECRYPT }).key)).jwk).toMatchObject({ use: 'enc', alg: 'RSA-OAEP-256' });
    expect(converted(await convertCmKey(ecCmKey('secp384r1', { usageMask: ENCRYPT_DECRYPT }).key)).jwk).toMatchObject({ use: 'enc', alg: 'ECDH-ES' });
  });

  it.each([
    [1, 'sig'],
    [2, 'sig'],
    [4, 'enc'],
    [8, 'enc'],
    [16, 'enc'],
    [32, 'enc'],
    [16 | 32 | 64, 'enc'],
  ])('derives use from usageMask %d as %s', async (usageMask, use) => {
    expect(converted(await convertCmKey(rsaCmKey({ usageMask }).key)).jwk.use).toBe(use);
  });

  it('skips a key allowed to both sign and encrypt, unless the jwks-use label decides', async () => {
    const both = rsaCmKey({ usageMask: SIGN_VERIFY | ENCRYPT_DECRYPT });
    expect(skipReason(await convertCmKey(both.key))).toBe('ambiguous_use');
    const labelled = { ...both.key, labels: { jwks: 'publish', 'jwks-use': 'enc' } };
    expect(converted(await convertCmKey(labelled)).jwk).toMatchObject({ use: 'enc', alg: 'RSA-OAEP-256' });
  });

  it('refuses a jwks-use label the usage mask does not allow, or one that is not sig/enc', async () => {
    const signing = rsaCmKey({ usageMask: SIGN_VERIFY });
    expect(skipReason(await convertCmKey({ ...signing.key, labels: { 'jwks-use': 'enc' } }))).toBe('invalid_use_label');
    expect(skipReason(await convertCmKey({ ...signing.key, labels: { 'jwks-use': 'signature' } }))).toBe('invalid_use_label');
  });

  it('skips a key whose mask allows neither signing nor encryption', async () => {
    expect(skipReason(await convertCmKey(rsaCmKey({ usageMask: 64 | 2048 }).key))).toBe('no_use');
  });

  it('lets the jwks-alg label choose another algorithm that fits the key', async () => {
    const rsa = rsaCmKey({ labels: { 'jwks-alg': 'PS256' } });
    expect(converted(await convertCmKey(rsa.key)).jwk.alg).toBe('PS256');
    const enc = rsaCmKey({ usageMask: ENCRYPT_DECRYPT, labels: { 'jwks-alg': 'RSA-OAEP' } });
    expect(converted(await convertCmKey(enc.key)).jwk.alg).toBe('RSA-OAEP');
  });

  it.each([
    ['an EC algorithm on an RSA key', () => rsaCmKey({ labels: { 'jwks-alg': 'ES256' } })],
    ['an encryption algorithm on a signing key', () => rsaCmKey({ labels: { 'jwks-alg': 'RSA-OAEP-256' } })],
    ['ES384 on a P-256 key', () => ecCmKey('prime256v1', { labels: { 'jwks-alg': 'ES384' } })],
    ['an unknown algorithm', () => rsaCmKey({ labels: { 'jwks-alg': 'none' } })],
  ])('skips a key whose jwks-alg label does not fit: %s', async (_case, make) => {
    const conversion = await convertCmKey(make().key);
    expect(skipReason(conversion)).toBe('invalid_alg_label');
    expect(conversion.kind === 'skipped' && conversion.kid).toBeTruthy();
  });

  it('refuses RSA keys under 2048 bits (CM creates 1024-bit keys by default), naming their kid', async () => {
    const weak = await convertCmKey(rsaCmKey({ bits: 1024 }).key);
    expect(skipReason(weak)).toBe('weak_key');
    expect(weak.kind === 'skipped' && weak.detail).toContain('1024 bits');
  });

  it.each(['secp256k1', 'secp224r1'])('skips EC keys on %s', async (curve) => {
    expect(skipReason(await convertCmKey(ecCmKey(curve).key))).toBe('unsupported_curve');
  });

  it('skips an Ed25519 key filed as EC (curve25519)', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const key = cmKey('EC', publicKey.export({ type: 'spki', format: 'pem' }).toString(), { curveid: 'curve25519' });
    expect(skipReason(await convertCmKey(key))).toBe('unsupported_curve');
  });

  it('skips symmetric keys, secrets and certificates, and Public Key twins of a key pair', async () => {
    expect(skipReason(await convertCmKey(cmKey('AES', undefined, { objectType: 'Symmetric Key' })))).toBe('not_key_pair');
    expect(skipReason(await convertCmKey(cmKey('AES', undefined, {}, { objectType: 'Secret Data' })))).toBe('not_key_pair');
    expect(skipReason(await convertCmKey(cmKey('RSA', undefined, {}, { objectType: 'Certificate' })))).toBe('not_key_pair');
    expect(skipReason(await convertCmKey({ ...rsaCmKey().key, objectType: 'Public Key' }))).toBe('public_key_object');
    expect(skipReason(await convertCmKey({ ...rsaCmKey().key, algorithm: 'DSA' }))).toBe('unsupported_algorithm');
  });

  it('refuses key material that does not match the CM algorithm', async () => {
    const ec = ecCmKey('prime256v1');
    expect(skipReason(await convertCmKey({ ...ec.key, algorithm: 'RSA' }))).toBe('malformed_public_key');
  });

  it.each([
    ['garbage', 'not a pem'],
    ['a truncated PEM', '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----'],
    ['a certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'],
  ])('skips a key whose publickey is %s', async (_case, pem) => {
    expect(skipReason(await convertCmKey({ ...rsaCmKey().key, publickey: pem }))).toBe('malformed_public_key');
  });

  it('refuses, as a security matter, a private key found in the publickey field', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key = { ...rsaCmKey().key, publickey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    const conversion = await convertCmKey(key);
    expect(skipReason(conversion)).toBe('private_key_material');
    expect(JSON.stringify(conversion)).not.toContain('PRIVATE KEY-----\nMII');
  });

  it('treats a destroyed key without public key as having nothing to publish, and a live one as a fault', async () => {
    expect((await convertCmKey({ ...rsaCmKey().key, publickey: undefined, state: 'Destroyed' })).kind).toBe('no_material');
    expect(skipReason(await convertCmKey({ ...rsaCmKey().key, publickey: undefined }))).toBe('no_public_key');
  });

  it('outputs only allowlisted public members', async () => {
    for (const fixture of [rsaCmKey(), ecCmKey('secp521r1'), rsaCmKey({ usageMask: ENCRYPT_DECRYPT })]) {
      const { jwk } = converted(await convertCmKey(fixture.key));
      expect(Object.keys(jwk).sort()).toEqual([...(PUBLIC_MEMBERS_BY_KTY[jwk.kty] ?? [])].sort());
    }
  });
});
