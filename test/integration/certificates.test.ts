/**
 * Certificate chains from CipherTrust Manager to the store, with the real processes: the emulator
 * holding keys and Certificate objects from its bank PKI, key-rotated (bundle) with
 * JWKS_CERT_TRUST_ANCHORS, and each store over loopback. A key whose certificate fails a check is
 * published without x5c, never with the wrong one.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import type { CmKeyResource } from '../../emulator/index.js';
import { validateKeySet, type PublicJwk } from '../../shared/jwks/validate.js';
import type { BackendName } from '../support/backends.js';
import { certificateFor, derOf, testAuthority } from '../support/certificates.js';
import { eventually, rawRequest } from '../support/http.js';
import { startFunction } from '../support/processes.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { startPublisherStack, waitForFirstCycle, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const PUBLISH = { jwks: 'publish' };

describe.each<BackendName>(['file', 's3'])('certificate chains from CipherTrust Manager to the %s store', (backendName) => {
  let stack: PublisherStack;
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  const keys: Record<string, CmKeyResource> = {};
  const kids: Record<string, string> = {};
  const leaves: Record<string, string> = {};

  beforeAll(async () => {
    ca = await testAuthority();
    stack = await startPublisherStack(backendName, { env: { JWKS_CERT_TRUST_ANCHORS: join(ca.dir, 'root.pem') } });
    // The start-up cycle must be over: a ping arriving during it would join it, and miss what follows.
    await waitForFirstCycle(stack.keyRotated.url);
    const cm = stack.emulator.keys;
    const specs = {
      rsa: { algorithm: 'rsa', size: 2048 },
      p256: { algorithm: 'ec', curveid: 'prime256v1' },
      p384: { algorithm: 'ec', curveid: 'secp384r1' },
      p521: { algorithm: 'ec', curveid: 'secp521r1' },
      planted: { algorithm: 'ec', curveid: 'prime256v1' },
      expired: { algorithm: 'rsa', size: 2048 },
      rogue: { algorithm: 'ec', curveid: 'secp384r1' },
    } as const;
    for (const [label, spec] of Object.entries(specs)) {
      keys[label] = cm.create({ name: `cert-test-${label}`, ...spec, usageMask: SIGN, labels: PUBLISH });
      kids[label] = await calculateJwkThumbprint(createPublicKey(keys[label].publickey!).export({ format: 'jwk' }));
    }
    const publicKeyOf = (label: string) => createPublicKey(keys[label]!.publickey!);
    cm.importCertificate({ name: 'issuing-ca', material: ca.issuingPem, certType: 'x509-pem', labels: PUBLISH });
    for (const label of ['rsa', 'p256', 'p384', 'p521']) {
      leaves[label] = await certificateFor(ca, publicKeyOf(label), { commonName: label });
      // DER for one of them: CM takes certType x509-der as well.
      const der = label === 'p384';
      cm.importCertificate({ name: `cert-${label}`, material: der ? derOf(leaves[label]) : leaves[label], certType: der ? 'x509-der' : 'x509-pem', labels: { ...PUBLISH, 'jwks-key': `cert-test-${label}` } });
    }
    // Labelled for "planted" but issued for the RSA key; an expired one; one from a look-alike CA.
    cm.importCertificate({ name: 'cert-planted', material: await certificateFor(ca, publicKeyOf('rsa')), labels: { ...PUBLISH, 'jwks-key': 'cert-test-planted' } });
    cm.importCertificate({ name: 'cert-expired', material: await certificateFor(ca, publicKeyOf('expired'), { days: -1 }), labels: PUBLISH });
    cm.importCertificate({ name: 'cert-rogue', material: await certificateFor(ca, publicKeyOf('rogue'), { rogue: true }), labels: PUBLISH });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
    await ca?.remove();
  });

  it('publishes every signing key type with its chain, leaf first, without the anchor, and the others bare', async () => {
    expect((await stack.ping()).status).toBe(200);
    const bytes = await stack.publishedBytes();
    const published = new Map<string, PublicJwk>(validateKeySet(bytes!).keys.map((key) => [key.kid, key]));
    for (const label of ['rsa', 'p256', 'p384', 'p521']) {
      const key = published.get(kids[label]!)!;
      expect(key.x5c).toEqual([derOf(leaves[label]!), derOf(ca.issuingPem)]);
      expect(key['x5t#S256']).toBe(Buffer.from(new X509Certificate(leaves[label]!).fingerprint256.replace(/:/g, ''), 'hex').toString('base64url'));
    }
    for (const label of ['planted', 'expired', 'rogue']) {
      const key = published.get(kids[label]!)!;
      expect(key).toBeDefined();
      expect(key.x5c).toBeUndefined();
      expect(key['x5t#S256']).toBeUndefined();
    }
    expect(bytes!.toString()).not.toContain(derOf(ca.anchorPem));
  });

  it('logs, counts and exposes what it refused, and each certificate expiry', async () => {
    const output = stack.keyRotated.output();
    const refusals = output.split('\n').filter((line) => line.includes('"event":"certificate_refused"')).map((line) => JSON.parse(line) as { kid: string; reason: string });
    expect(new Map(refusals.map((line) => [line.kid, line.reason]))).toEqual(
      new Map([
        [kids.planted, 'public_key_mismatch'],
        [kids.expired, 'expired'],
        [kids.rogue, 'untrusted_chain'],
      ]),
    );
    const metrics = (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString();
    for (const reason of ['public_key_mismatch', 'expired', 'untrusted_chain']) expect(metrics).toContain(`jwks_publisher_certificates_refused{reason="${reason}"} 1`);
    for (const label of ['rsa', 'p256', 'p384', 'p521']) {
      const expiry = new X509Certificate(leaves[label]!).validToDate.getTime() / 1000;
      expect(metrics).toContain(`jwks_publisher_certificate_expiry_timestamp_seconds{kid="${kids[label]}"} ${expiry}`);
    }
  });

  it('jwks-get never serves a stored set with a planted certificate: it keeps the last good set and counts the refusal', async () => {
    const jwksGet = await startFunction({ host: 'lean', target: 'jwks-get', env: { ...stack.backend.env, JWKS_REVALIDATE_MS: '200' } });
    const good = await stack.publishedBytes();
    try {
      await eventually(async () => (await rawRequest(jwksGet.url, '/jwks')).body.equals(good!), 10_000);
      // Someone with write access to the store moves the P-256 key's chain onto the RSA key.
      const set = JSON.parse(good!.toString()) as { keys: PublicJwk[] };
      const p256 = set.keys.find((key) => key.kid === kids.p256)!;
      const planted = set.keys.map((key) => (key.kid === kids.rsa ? { ...key, x5c: p256.x5c, 'x5t#S256': p256['x5t#S256'] } : key));
      await stack.backend.store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify({ keys: planted })));
      await eventually(async () => /jwks_set_refusals_total\{[^}]*reason="certificate_mismatch"[^}]*\} [1-9]/.test((await rawRequest(jwksGet.url, '/metrics')).body.toString()), 10_000);
      expect((await rawRequest(jwksGet.url, '/jwks')).body.equals(good!)).toBe(true);
      expect(jwksGet.output()).toContain('certificate_mismatch_in_store');
    } finally {
      await jwksGet.stop();
      await stack.backend.store.write(KEY_SET_OBJECT, good!);
    }
  });

  it('swaps the chain when the certificate is renewed in CM, keeping the kid', async () => {
    const renewed = await certificateFor(ca, createPublicKey(keys.rsa!.publickey!), { commonName: 'rsa-renewed', days: 800 });
    stack.emulator.keys.importCertificate({ name: 'cert-rsa-renewed', material: renewed, labels: { ...PUBLISH, 'jwks-key': 'cert-test-rsa' } });
    expect((await stack.ping()).status).toBe(200);
    const key = validateKeySet((await stack.publishedBytes())!).keys.find((candidate) => candidate.kid === kids.rsa);
    expect(key?.x5c?.[0]).toBe(derOf(renewed));
  });
});
