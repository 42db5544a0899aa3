/**
 * End to end, flows 1 and 4: internal apps sign through PKCS#11 only; the keys reach /jwks only
 * through CipherTrust's REST API and key-rotated; partners verify with the four clients they use,
 * and each accepts the published set whole.
 */
import { createLocalJWKSet, importJWK, jwtVerify, type JSONWebKeySet } from 'jose';
import type { SigningAlgorithm } from '../../hsm/index.js';
import { ENCRYPT_DECRYPT, SIGN_VERIFY, startArchitecture, startPartners, type Architecture, type Partners } from '../support/architecture.js';
import { rawRequest } from '../support/http.js';
import { loadSet, succeeded } from '../support/partner-clients.js';
import { describeWithHsm } from '../support/softhsm.js';

/** CM key name (= CKA_LABEL) and the JWS algorithm the publisher gives it. */
const SIGNING_KEYS: readonly { label: string; alg: SigningAlgorithm }[] = [
  { label: 'payments-rs256', alg: 'RS256' },
  { label: 'payments-ps256', alg: 'PS256' },
  { label: 'core-es256', alg: 'ES256' },
  { label: 'core-es384', alg: 'ES384' },
];

describeWithHsm('end to end: sign through PKCS#11, verify from /jwks', () => {
  let architecture: Architecture;
  let partners: Partners;
  const kids = new Map<string, string>();
  let encryptionKids: string[] = [];

  beforeAll(async () => {
    architecture = await startArchitecture();
    architecture.createKey({ name: 'payments-rs256', algorithm: 'rsa', size: 2048, usageMask: SIGN_VERIFY });
    architecture.createKey({ name: 'payments-ps256', algorithm: 'rsa', size: 2048, usageMask: SIGN_VERIFY, labels: { 'jwks-alg': 'PS256' } });
    architecture.createKey({ name: 'core-es256', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN_VERIFY });
    architecture.createKey({ name: 'core-es384', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN_VERIFY });
    architecture.createKey({ name: 'inbound-rsa', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT_DECRYPT, labels: { 'jwks-alg': 'RSA-OAEP' } });
    architecture.createKey({ name: 'inbound-ec', algorithm: 'ec', curveid: 'prime256v1', usageMask: ENCRYPT_DECRYPT });
    // In the token but never published (not selected): what a forger holding some other key has.
    architecture.createKey({ name: 'unpublished-es256', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN_VERIFY, labels: { jwks: 'no' } });
    // The kids internal apps compute from the token alone, before anything is published.
    for (const { label } of SIGNING_KEYS) kids.set(label, (await architecture.hsm.keys(label))[0]!.kid);
    encryptionKids = [(await architecture.hsm.keys('inbound-rsa'))[0]!.kid, (await architecture.hsm.keys('inbound-ec'))[0]!.kid];
    await architecture.waitUntilServed([...kids.values(), ...encryptionKids]);
    partners = startPartners(architecture.jwksUrl, 300);
  }, 90_000);
  afterAll(async () => {
    await partners?.close();
    await architecture?.close();
  });

  it.each(SIGNING_KEYS)('a JWT signed with $label ($alg) through PKCS#11 verifies with jose, PyJWT, jwcrypto and jwks-rsa', async ({ label, alg }) => {
    const signer = await architecture.hsm.signer({ label, alg });
    expect(signer.kid).toBe(kids.get(label));
    const jwt = await signer.signJwt({ iss: 'https://core.bank.example', sub: 'payment-7', iat: Math.floor(Date.now() / 1000) });
    for (const name of partners.names) {
      await expect(partners.verify(name, jwt)).resolves.toBe(signer.kid);
    }
  });

  it('publishes for each key exactly the JWK the internal app derives from the token (kid, members, alg, use)', async () => {
    const set = JSON.parse((await rawRequest(architecture.jwksGet.url, '/jwks')).body.toString()) as JSONWebKeySet;
    for (const { label, alg } of SIGNING_KEYS) {
      const signer = await architecture.hsm.signer({ label, alg });
      const published = set.keys.find((key) => key.kid === signer.kid);
      expect(published).toEqual(signer.publicJwk());
      // jwk-get serves the same key alone.
      const single = JSON.parse((await rawRequest(architecture.jwkGet.url, `/jwk/${signer.kid}`)).body.toString()) as Record<string, unknown>;
      expect(single).toEqual(published);
    }
  });

  it('a token signed by another P-256 key under a published ES256 kid fails its signature check in every client', async () => {
    const genuine = await architecture.hsm.signer({ label: 'core-es256', alg: 'ES256' });
    const other = await architecture.hsm.signer({ label: 'unpublished-es256', alg: 'ES256' });
    expect(await architecture.servedKids()).not.toContain(other.kid);
    // Same alg, same curve, the genuine kid: only the signature is wrong.
    const [, payload, signature] = (await other.signJwt({ sub: 'forged' })).split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: genuine.kid, typ: 'JWT' })).toString('base64url');
    const forged = [header, payload, signature].join('.');
    const signatureErrors: Record<string, RegExp> = {
      jose: /signature verification failed/,
      pyjwt: /InvalidSignatureError/,
      jwcrypto: /InvalidJWSSignature/,
      'jwks-rsa': /signature verification failed/,
    };
    for (const name of partners.names) await expect(partners.verify(name, forged)).rejects.toThrow(signatureErrors[name]);
  });

  it('the published set is accepted whole by all four clients, no key breaking any of them', async () => {
    const body = (await rawRequest(architecture.jwksGet.url, '/jwks')).body.toString();
    const set = JSON.parse(body) as JSONWebKeySet;
    const signingKids = [...kids.values()].sort();
    expect(set.keys.map((key) => key.kid).sort()).toEqual([...signingKids, ...encryptionKids].sort());
    // jose: every key imports with its alg, and a local set built from the whole document works.
    for (const key of set.keys) await expect(importJWK(key, key.alg)).resolves.toBeDefined();
    const local = createLocalJWKSet(set);
    const jwt = await (await architecture.hsm.signer({ label: 'core-es256', alg: 'ES256' })).signJwt({ sub: 'whole-set' });
    await expect(jwtVerify(jwt, local)).resolves.toBeDefined();
    // PyJWT keeps every signing key (enc keys are not JWS keys: it drops them, without failing).
    const pyjwt = await succeeded(loadSet({ partner: partners.python, name: 'pyjwt' }));
    expect([...(pyjwt.signing_kids ?? [])].sort()).toEqual(signingKids);
    // jwcrypto loads every key, enc keys included.
    const jwcrypto = await succeeded(loadSet({ partner: partners.python, name: 'jwcrypto' }));
    expect([...jwcrypto.kids].sort()).toEqual([...signingKids, ...encryptionKids].sort());
    // jwks-rsa offers every signing key.
    const jwksRsa = await succeeded(loadSet({ partner: partners.jwksRsa, name: 'jwks-rsa' }));
    expect([...jwksRsa.kids].sort()).toEqual(signingKids);
  });
});
