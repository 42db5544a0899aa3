/**
 * Certificate objects in the emulator, as CM models them: keys2 objects with objectType
 * "Certificate", certType and material; the material on the GET of one object; and the demo seed
 * that certifies the RSA and EC P-256/384/521 signing keys from a small bank PKI.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedDemoCertificates, seedDemoKeys } from '../../emulator/index.js';
import { certificateFor, derOf, testAuthority } from '../support/certificates.js';
import { call, login, startTestEmulator, type TestEmulator } from './support.js';

const KEYS = '/api/v1/vault/keys2';

describe('Certificate objects', () => {
  let emulator: TestEmulator;
  let token: string;
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  let leaf: string;
  beforeAll(async () => {
    [emulator, ca] = await Promise.all([startTestEmulator(), testAuthority()]);
    token = await login(emulator);
    const key = emulator.keys.create({ name: 'certified', algorithm: 'ec', curveid: 'secp384r1', usageMask: 3, labels: { jwks: 'publish' } });
    leaf = await certificateFor(ca, createPublicKey(key.publickey!));
  }, 60_000);
  afterAll(async () => {
    await emulator.stop();
    await ca.remove();
  });

  it('imports a certificate by REST (x509-pem and x509-der): listed without material, answered with it by GET', async () => {
    const pem = await call(emulator, 'POST', KEYS, { token, body: { name: 'cert-pem', objectType: 'Certificate', certType: 'x509-pem', material: leaf, labels: { jwks: 'publish' } } });
    expect(pem.status).toBe(201);
    expect(pem.json).toMatchObject({ objectType: 'Certificate', algorithm: 'EC', curveid: 'secp384r1', certType: 'x509-pem' });
    const der = await call(emulator, 'POST', KEYS, { token, body: { name: 'cert-der', objectType: 'Certificate', certType: 'x509-der', material: derOf(leaf) } });
    expect(der.status).toBe(201);
    const listed = await call(emulator, 'GET', `${KEYS}?labels=jwks=publish`, { token });
    const listedCertificate = (listed.json.resources as Record<string, unknown>[]).find((resource) => resource.name === 'cert-pem');
    expect(listedCertificate).toBeDefined();
    expect(listedCertificate!.material).toBeUndefined();
    for (const id of [pem.json.id, der.json.id] as string[]) {
      const got = await call(emulator, 'GET', `${KEYS}/${id}?type=id`, { token });
      expect(new X509Certificate(got.json.material as string).raw.equals(new X509Certificate(leaf).raw)).toBe(true);
    }
  });

  it('refuses a certificate import without material, with material that is no certificate, or an unknown certType', async () => {
    for (const body of [
      { name: 'no-material', objectType: 'Certificate' },
      { name: 'garbage', objectType: 'Certificate', material: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
      { name: 'bad-type', objectType: 'Certificate', certType: 'pkcs7', material: leaf },
    ]) {
      const answer = await call(emulator, 'POST', KEYS, { token, body });
      expect(answer.status).toBe(400);
      expect(answer.json.codeDesc).toMatch(/NCERRInvalidParamValue/);
    }
  });
});

describe('seedDemoCertificates', () => {
  it('certifies the demo RSA and EC P-256/384/521 signing keys, with the issuing CA in CM and the root as the anchor', async () => {
    const emulator = await startTestEmulator();
    const dir = await mkdtemp(join(tmpdir(), 'seed-pki-'));
    try {
      seedDemoKeys(emulator.keys);
      const { anchorFile, certificates } = await seedDemoCertificates(emulator.keys, join(dir, 'pki'));
      const anchor = new X509Certificate(await readFile(anchorFile, 'utf8'));
      const byName = new Map(emulator.keys.list().map((key) => [key.name, key]));
      const signing = ['demo-rsa-signing', 'demo-ec-signing', 'demo-ec384-signing', 'demo-ec521-signing'];
      expect(signing.map((name) => byName.get(name)?.curveid ?? byName.get(name)?.algorithm)).toEqual(['RSA', 'prime256v1', 'secp384r1', 'secp521r1']);
      const issuing = new X509Certificate(emulator.keys.get(certificates[0]!.id)!.material!);
      expect(issuing.verify(anchor.publicKey)).toBe(true);
      for (const name of signing) {
        const object = certificates.find((certificate) => certificate.labels['jwks-key'] === name)!;
        const leaf = new X509Certificate(emulator.keys.get(object.id)!.material!);
        expect(leaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(createPublicKey(byName.get(name)!.publickey!).export({ type: 'spki', format: 'der' }));
        expect(leaf.verify(issuing.publicKey)).toBe(true);
      }
    } finally {
      await emulator.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
