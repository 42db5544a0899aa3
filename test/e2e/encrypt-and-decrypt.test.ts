/**
 * End to end, flow 2: a partner encrypts to the `enc` key it finds at /jwks (jose, and jwcrypto);
 * the internal app decrypts through PKCS#11, the private key staying in the token.
 */
import { CompactEncrypt, importJWK, type JSONWebKeySet, type JWK } from 'jose';
import { JweDecryptionFailedError, KeyNotFoundError, MechanismNotSupportedError, type JweDecrypter } from '../../hsm/index.js';
import { ENCRYPT_DECRYPT, SIGN_VERIFY, startArchitecture, type Architecture } from '../support/architecture.js';
import { rawRequest } from '../support/http.js';
import { encrypt, startPythonPartner, succeeded, type PartnerProcess } from '../support/partner-clients.js';
import { describeWithHsm } from '../support/softhsm.js';

const MESSAGE = 'IBAN DE89 3704 0044 0532 0130 00, 1 250.00 EUR';

describeWithHsm('end to end: partners encrypt to /jwks, internal apps decrypt through PKCS#11', () => {
  let architecture: Architecture;
  let python: PartnerProcess;
  let rsaInbound: JweDecrypter;
  let ecInbound: JweDecrypter;

  /** What a partner does: fetch /jwks and take the enc key of this kty. */
  async function publishedEncryptionKey(kty: 'RSA' | 'EC'): Promise<JWK> {
    const set = JSON.parse((await rawRequest(architecture.jwksGet.url, '/jwks')).body.toString()) as JSONWebKeySet;
    const key = set.keys.find((candidate) => candidate.use === 'enc' && candidate.kty === kty);
    if (key === undefined) throw new Error(`no ${kty} enc key published`);
    return key;
  }

  async function joseEncrypt(key: JWK, enc: string, alg = key.alg!): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(MESSAGE)).setProtectedHeader({ alg, enc, kid: key.kid! }).encrypt(await importJWK(key, alg));
  }

  beforeAll(async () => {
    architecture = await startArchitecture();
    // SoftHSM2 2.6 decrypts OAEP with SHA-1 only: the RSA key is published as RSA-OAEP by label.
    architecture.createKey({ name: 'inbound-rsa', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT_DECRYPT, labels: { 'jwks-alg': 'RSA-OAEP' } });
    architecture.createKey({ name: 'inbound-ec', algorithm: 'ec', curveid: 'prime256v1', usageMask: ENCRYPT_DECRYPT });
    architecture.createKey({ name: 'inbound-ec384', algorithm: 'ec', curveid: 'secp384r1', usageMask: ENCRYPT_DECRYPT });
    architecture.createKey({ name: 'outbound-signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN_VERIFY });
    rsaInbound = await architecture.hsm.decrypter({ label: 'inbound-rsa', algorithms: ['RSA-OAEP'] });
    ecInbound = await architecture.hsm.decrypter({ label: 'inbound-ec' });
    const ec384 = await architecture.hsm.decrypter({ label: 'inbound-ec384' });
    const signing = (await architecture.hsm.keys('outbound-signing'))[0]!.kid;
    await architecture.waitUntilServed([...rsaInbound.kids, ...ecInbound.kids, ...ec384.kids, signing]);
    python = startPythonPartner({ jwksUrl: architecture.jwksUrl, lifespanSeconds: 300 });
  }, 90_000);
  afterAll(async () => {
    await python?.close();
    await architecture?.close();
  });

  it('publishes the encryption keys with the algorithms the token can do', async () => {
    expect(await publishedEncryptionKey('RSA')).toMatchObject({ use: 'enc', alg: 'RSA-OAEP', kid: rsaInbound.kids[0] });
    expect(await publishedEncryptionKey('EC')).toMatchObject({ use: 'enc', alg: 'ECDH-ES' });
  });

  it.each(['A256GCM', 'A128GCM', 'A128CBC-HS256', 'A256CBC-HS512'])('jose RSA-OAEP / %s to the published key: decrypted in the token', async (enc) => {
    const jwe = await joseEncrypt(await publishedEncryptionKey('RSA'), enc);
    const { plaintext, kid } = await rsaInbound.decrypt(jwe);
    expect(plaintext.toString()).toBe(MESSAGE);
    expect(kid).toBe(rsaInbound.kids[0]);
  });

  it.each(['A256GCM', 'A192GCM', 'A128CBC-HS256'])('jose ECDH-ES / %s to the published key: derived in the token, Concat KDF outside', async (enc) => {
    const key = (JSON.parse((await rawRequest(architecture.jwksGet.url, '/jwks')).body.toString()) as JSONWebKeySet).keys.find(
      (candidate) => candidate.kid === ecInbound.kids[0],
    )!;
    const jwe = await joseEncrypt(key, enc);
    expect((await ecInbound.decrypt(jwe)).plaintext.toString()).toBe(MESSAGE);
  });

  it.each([
    ['RSA-OAEP', 'A256GCM', 'rsa'],
    ['RSA-OAEP', 'A128CBC-HS256', 'rsa'],
    ['ECDH-ES', 'A256GCM', 'ec'],
    ['ECDH-ES', 'A256CBC-HS512', 'ec'],
  ])('jwcrypto %s / %s to the published key (by kid, fetched from /jwks): decrypted in the token', async (alg, enc, which) => {
    const decrypter = which === 'rsa' ? rsaInbound : ecInbound;
    const answer = await succeeded(encrypt({ partner: python, name: 'jwcrypto' }, { kid: decrypter.kids[0]!, alg, enc, plaintext: new TextEncoder().encode(MESSAGE) }));
    const { plaintext, protectedHeader } = await decrypter.decrypt(answer.jwe);
    expect(plaintext.toString()).toBe(MESSAGE);
    expect(protectedHeader).toMatchObject({ alg, enc, kid: decrypter.kids[0] });
  });

  it('a JWE to the P-384 key is not decrypted with the P-256 one, and a tampered JWE gives one answer', async () => {
    const set = JSON.parse((await rawRequest(architecture.jwksGet.url, '/jwks')).body.toString()) as JSONWebKeySet;
    const p384 = set.keys.find((key) => key.crv === 'P-384')!;
    await expect(ecInbound.decrypt(await joseEncrypt(p384, 'A256GCM'))).rejects.toThrow(KeyNotFoundError);
    const jwe = (await joseEncrypt(await publishedEncryptionKey('RSA'), 'A256GCM')).split('.');
    jwe[3] = Buffer.from(jwe[3]!, 'base64url').reverse().toString('base64url');
    await expect(rsaInbound.decrypt(jwe.join('.'))).rejects.toThrow(JweDecryptionFailedError);
  });

  it('RSA-OAEP-256 to an RSA key needs an HSM that supports it: refused plainly here, never a silent failure', async () => {
    const broad = await architecture.hsm.decrypter({ label: 'inbound-rsa' });
    const jwe = await joseEncrypt(await publishedEncryptionKey('RSA'), 'A256GCM', 'RSA-OAEP-256');
    await expect(broad.decrypt(jwe)).rejects.toThrow(MechanismNotSupportedError);
    // Narrowed to what is published, the decrypter refuses it before the token is asked.
    await expect(rsaInbound.decrypt(jwe)).rejects.toThrow(/alg RSA-OAEP-256 is not accepted/);
  });
});
