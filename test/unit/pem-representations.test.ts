/**
 * PEM forms of a served key (issue 14): the SubjectPublicKeyInfo of the JWK's key and the leaf
 * certificate of its x5c, each with its own ETag and the key's Last-Modified, made once per served
 * key representation.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { PemRepresentations, pemFormsOf } from '../../shared/serving/pem-representations.js';
import { representationOf } from '../../shared/serving/representation.js';
import { certificateFor, derOf, testAuthority } from '../support/certificates.js';

const lastModified = new Date('2026-12-01T08:00:00Z');

function served(jwk: Record<string, unknown>) {
  return representationOf(Buffer.from(JSON.stringify(jwk)), lastModified);
}

describe('PEM forms of a served key', () => {
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  beforeAll(async () => {
    ca = await testAuthority();
  });
  afterAll(() => ca?.remove());

  it.each([
    ['rsa', { modulusLength: 2048 }],
    ['ec', { namedCurve: 'P-384' }],
    ['ed25519', {}],
  ] as const)('gives the SubjectPublicKeyInfo PEM of a %s key', (type, options) => {
    const { publicKey } = generateKeyPairSync(type as 'rsa', options as { modulusLength: number });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'X' };
    const forms = pemFormsOf(served(jwk));
    expect(forms.publicKey.bytes.toString()).toBe(publicKey.export({ type: 'spki', format: 'pem' }));
    expect(createPublicKey(forms.publicKey.bytes.toString()).equals(publicKey)).toBe(true);
    expect(forms.publicKey.etag).toBe(representationOf(forms.publicKey.bytes, new Date()).etag);
    expect(forms.publicKey.lastModified).toEqual(lastModified);
    expect(forms.certificate).toBeUndefined();
  });

  it('gives the leaf certificate (x5c[0]) as PEM, holding the same key', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = await certificateFor(ca, publicKey);
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'ES256', x5c: [derOf(leaf), derOf(ca.issuingPem)], 'x5t#S256': 'unused-here' };
    const { certificate, publicKey: spki } = pemFormsOf(served(jwk));
    const text = certificate!.bytes.toString();
    expect(text).toMatch(/^-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/);
    expect(new X509Certificate(text).raw.equals(new X509Certificate(leaf).raw)).toBe(true);
    expect(new X509Certificate(text).publicKey.export({ type: 'spki', format: 'pem' })).toBe(spki.bytes.toString());
    expect(certificate!.etag).not.toBe(spki.etag);
  });

  it('are made once per served representation', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = served({ ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'ES256' });
    const pem = new PemRepresentations();
    expect(pem.of(key)).toBe(pem.of(key));
    expect(pem.of(served({ ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'ES256' }))).not.toBe(pem.of(key));
  });
});
