import { X509Certificate, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CmKey } from '../../shared/ciphertrust/cm-key.js';
import type { KeyReadResult } from '../../shared/ciphertrust/key-reader.js';
import { KeySetRefusedError } from '../../shared/jwks/errors.js';
import { serializeKeySet } from '../../shared/jwks/serialize.js';
import { validateKeySet, type PublicJwk } from '../../shared/jwks/validate.js';
import { keyUsageOf } from '../../shared/jwks/x509.js';
import { PublisherMetrics } from '../../shared/observability/publisher-metrics.js';
import { chooseChain } from '../../shared/publisher/certificate-chain.js';
import { nextDueDate } from '../../shared/publisher/due-dates.js';
import { convertCmKey } from '../../shared/publisher/cm-key-to-jwk.js';
import { PublicationCycle } from '../../shared/publisher/publication-cycle.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { capturingLogger } from '../support/capture.js';
import { certificateFor, certificateObject, derOf, testAuthority } from '../support/certificates.js';
import { ENCRYPT_DECRYPT, ecCmKey, rsaCmKey, type CmKeyFixture } from '../support/cm-keys.js';

let ca: Awaited<ReturnType<typeof testAuthority>>;
let anchors: X509Certificate[];
let rsa: CmKeyFixture;
let ec: CmKeyFixture;
let rsaJwk: PublicJwk;
let ecJwk: PublicJwk;
let rsaLeaf: string;
let ecLeaf: string;

beforeAll(async () => {
  ca = await testAuthority();
  anchors = [new X509Certificate(ca.anchorPem)];
  rsa = rsaCmKey({ name: 'signing-rsa' });
  ec = ecCmKey('secp384r1', { name: 'signing-ec' });
  rsaJwk = await jwkOf(rsa.key);
  ecJwk = await jwkOf(ec.key);
  [rsaLeaf, ecLeaf] = await Promise.all([certificateFor(ca, rsa.publicKey), certificateFor(ca, ec.publicKey)]);
}, 60_000);
afterAll(() => ca.remove());

async function jwkOf(key: CmKey): Promise<PublicJwk> {
  const conversion = await convertCmKey(key);
  if (conversion.kind !== 'converted') throw new Error(`fixture not converted: ${conversion.kind}`);
  return conversion.jwk;
}

function withChain(jwk: PublicJwk, leafPem: string, extra: string[] = [derOf(ca.issuingPem)]): PublicJwk {
  const leaf = new X509Certificate(leafPem);
  return { ...jwk, x5c: [derOf(leafPem), ...extra], 'x5t#S256': createHash('sha256').update(leaf.raw).digest('base64url') };
}

function refusal(keys: unknown[]): KeySetRefusedError {
  try {
    validateKeySet(Buffer.from(JSON.stringify({ keys })));
  } catch (error) {
    if (error instanceof KeySetRefusedError) return error;
    throw error;
  }
  throw new Error('the set was accepted');
}

describe('x5c and x5t#S256 in the JWK validator', () => {
  it('accepts keys carrying their own certificate chain, and writes the members in the published bytes', () => {
    const keys = [withChain(rsaJwk, rsaLeaf), withChain(ecJwk, ecLeaf)];
    const bytes = serializeKeySet(keys);
    expect(validateKeySet(bytes).keys.map((key) => key.x5c?.length)).toEqual([2, 2]);
    expect((JSON.parse(bytes.toString()) as { keys: PublicJwk[] }).keys.every((key) => typeof key['x5t#S256'] === 'string')).toBe(true);
  });

  it("refuses, as a security event, an x5c whose first certificate holds another key (a planted certificate)", () => {
    const error = refusal([{ ...withChain(rsaJwk, ecLeaf) }]);
    expect(error.reason).toBe('certificate_mismatch');
    expect(error.security).toBe(true);
    expect(error.message).toContain('x5c[0] whose public key');
  });

  it("refuses an x5t#S256 that is not x5c[0]'s thumbprint, and one member without the other", () => {
    const chained = withChain(ecJwk, ecLeaf);
    expect(refusal([{ ...chained, 'x5t#S256': withChain(rsaJwk, rsaLeaf)['x5t#S256'] }]).reason).toBe('certificate_mismatch');
    expect(refusal([{ ...chained, 'x5t#S256': undefined }]).reason).toBe('certificate_mismatch');
    expect(refusal([{ ...chained, x5c: undefined }]).reason).toBe('certificate_mismatch');
  });

  it('refuses a chain whose certificates do not certify one another, and entries that are not base64 DER', () => {
    expect(refusal([withChain(ecJwk, ecLeaf, [derOf(rsaLeaf)])]).reason).toBe('certificate_mismatch');
    expect(refusal([withChain(ecJwk, ecLeaf, ['not base64!'])]).reason).toBe('certificate_mismatch');
    expect(refusal([{ ...withChain(ecJwk, ecLeaf), x5c: [] }]).reason).toBe('certificate_mismatch');
  });
});

describe('chooseChain', () => {
  const now = () => new Date();
  const object = (pem: string, claims?: string) => ({ id: 'cert-id', name: 'some-cert', claims, certificate: new X509Certificate(pem) });
  const issuing = () => object(ca.issuingPem, 'issuing-ca');

  it('publishes leaf then issuing CA, without the anchor, with the leaf thumbprint', () => {
    const decision = chooseChain(rsaJwk, 'signing-rsa', [object(rsaLeaf), issuing()], anchors, now());
    expect(decision.kind).toBe('chain');
    if (decision.kind !== 'chain') return;
    expect(decision.x5c).toEqual([derOf(rsaLeaf), derOf(ca.issuingPem)]);
    expect(decision.x5c).not.toContain(derOf(ca.anchorPem));
    expect(decision.x5tS256).toBe(createHash('sha256').update(Buffer.from(derOf(rsaLeaf), 'base64')).digest('base64url'));
  });

  it('refuses a certificate labelled for the key that holds another public key (public_key_mismatch)', () => {
    const decision = chooseChain(rsaJwk, 'signing-rsa', [object(ecLeaf, 'signing-rsa'), issuing()], anchors, now());
    expect(decision).toMatchObject({ kind: 'refused', problem: 'public_key_mismatch' });
  });

  it('never uses a certificate labelled for another key, even one holding this key', () => {
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(rsaLeaf, 'signing-other'), issuing()], anchors, now())).toEqual({ kind: 'none' });
  });

  it('ignores a certificate for another key that does not claim this one', () => {
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(ecLeaf, 'other'), issuing()], anchors, now())).toEqual({ kind: 'none' });
  });

  it('refuses an expired certificate and one not valid yet', async () => {
    const expired = await certificateFor(ca, rsa.publicKey, { days: -1 });
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(expired), issuing()], anchors, now())).toMatchObject({ kind: 'refused', problem: 'expired' });
    const beforeIssue = new Date(Date.now() - 86_400_000);
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(rsaLeaf), issuing()], anchors, beforeIssue)).toMatchObject({ kind: 'refused', problem: 'not_yet_valid' });
  });

  it('refuses a chain that does not reach the anchors: a look-alike CA, a missing intermediate, no anchors', async () => {
    const rogue = await certificateFor(ca, rsa.publicKey, { rogue: true });
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(rogue), issuing()], anchors, now())).toMatchObject({ kind: 'refused', problem: 'untrusted_chain' });
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(rsaLeaf)], anchors, now())).toMatchObject({ kind: 'refused', problem: 'untrusted_chain' });
    expect(chooseChain(rsaJwk, 'signing-rsa', [object(rsaLeaf), issuing()], [], now())).toMatchObject({ kind: 'refused', problem: 'untrusted_chain' });
  });

  it('needs digitalSignature for sig, keyEncipherment for RSA enc, keyAgreement for EC enc', async () => {
    const encrypting = rsaCmKey({ usageMask: ENCRYPT_DECRYPT });
    const encJwk = await jwkOf(encrypting.key);
    const signingUsage = await certificateFor(ca, encrypting.publicKey);
    expect(chooseChain(encJwk, '', [object(signingUsage), issuing()], anchors, now())).toMatchObject({ kind: 'refused', problem: 'key_usage' });
    const encipherment = await certificateFor(ca, encrypting.publicKey, { keyUsage: 'keyEncipherment' });
    expect(chooseChain(encJwk, '', [object(encipherment), issuing()], anchors, now()).kind).toBe('chain');
    const agreeing = ecCmKey('prime256v1', { usageMask: ENCRYPT_DECRYPT });
    const agreement = await certificateFor(ca, agreeing.publicKey, { keyUsage: 'keyAgreement' });
    expect(keyUsageOf(new X509Certificate(agreement))).toEqual(new Set(['keyAgreement']));
    expect(chooseChain(await jwkOf(agreeing.key), '', [object(agreement), issuing()], anchors, now()).kind).toBe('chain');
    const encipheringEc = await certificateFor(ca, agreeing.publicKey, { keyUsage: 'keyEncipherment' });
    expect(chooseChain(await jwkOf(agreeing.key), '', [object(encipheringEc), issuing()], anchors, now())).toMatchObject({ problem: 'key_usage' });
    const signingWithEncipherment = await certificateFor(ca, rsa.publicKey, { keyUsage: 'keyEncipherment' });
    expect(chooseChain(rsaJwk, '', [object(signingWithEncipherment), issuing()], anchors, now())).toMatchObject({ problem: 'key_usage' });
  });

  it('prefers the certificate valid longest when CM holds a renewal next to the old one', async () => {
    const renewed = await certificateFor(ca, rsa.publicKey, { days: 800 });
    const decision = chooseChain(rsaJwk, 'signing-rsa', [object(rsaLeaf), object(renewed), issuing()], anchors, now());
    expect(decision.kind === 'chain' && decision.x5c[0]).toBe(derOf(renewed));
  });
});

describe('publication with certificates', () => {
  let directory: string;
  let store: FileKeySetStore;

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'cycle-certs-'));
    store = new FileKeySetStore(directory);
  });
  afterEach(() => rm(directory, { recursive: true, force: true }));

  function cycleWith(objects: () => CmKey[]) {
    const log = capturingLogger('key-rotated');
    const metrics = new PublisherMetrics({ defaultMetrics: false });
    const reader = { read: (): Promise<KeyReadResult> => Promise.resolve({ keys: objects(), malformed: [], outsideSelector: [], fetched: 0 }) };
    const cycle = new PublicationCycle({ reader, store, logger: log.logger, observer: metrics, retainDeactivatedMs: 3_600_000, allowEmpty: false, maxSetBytes: 1024 * 1024, maxKeys: 20, certificateAnchors: anchors });
    return { cycle, log, metrics };
  }

  async function publishedKeys(): Promise<PublicJwk[]> {
    const read = await store.read(KEY_SET_OBJECT, { maxBytes: 1024 * 1024 });
    if (read.kind !== 'found') throw new Error(`no key set: ${read.kind}`);
    return [...validateKeySet(read.object.body).keys];
  }

  it('publishes x5c and x5t#S256 for a key whose chain verifies, and its expiry as a metric', async () => {
    const { cycle, metrics } = cycleWith(() => [rsa.key, ec.key, certificateObject(rsaLeaf), certificateObject(ca.issuingPem, 'issuing-ca')]);
    expect((await cycle.run([{ kind: 'ping' }])).outcome).toBe('published');
    const keys = await publishedKeys();
    const published = keys.find((key) => key.kid === rsaJwk.kid)!;
    expect(published.x5c).toEqual([derOf(rsaLeaf), derOf(ca.issuingPem)]);
    expect(keys.find((key) => key.kid === ecJwk.kid)!.x5c).toBeUndefined();
    const exposition = await metrics.registry.metrics();
    const expiry = Math.floor(new X509Certificate(rsaLeaf).validToDate.getTime() / 1000);
    expect(exposition).toContain(`jwks_publisher_certificate_expiry_timestamp_seconds{kid="${rsaJwk.kid}"} ${expiry}`);
    expect(exposition).not.toContain(`jwks_publisher_certificate_expiry_timestamp_seconds{kid="${ecJwk.kid}"}`);
  });

  it('publishes the key without x5c, never with a planted wrong certificate, and logs and counts it', async () => {
    // A certificate labelled for the RSA key but holding another key, with a chain that verifies.
    const { cycle, log, metrics } = cycleWith(() => [rsa.key, certificateObject(ecLeaf, 'planted', { 'jwks-key': 'signing-rsa' }), certificateObject(ca.issuingPem, 'issuing-ca')]);
    expect((await cycle.run([{ kind: 'ping' }])).outcome).toBe('published');
    const [published] = await publishedKeys();
    expect(published).toEqual(rsaJwk);
    expect(log.lines().find((line) => line.event === 'certificate_refused')).toMatchObject({ kid: rsaJwk.kid, reason: 'public_key_mismatch', security: true });
    expect(await metrics.registry.metrics()).toContain('jwks_publisher_certificates_refused{reason="public_key_mismatch"} 1');
  });

  it('keeps the kid when the certificate is renewed, and drops x5c when it expires', async () => {
    let objects = [rsa.key, certificateObject(rsaLeaf), certificateObject(ca.issuingPem, 'issuing-ca')];
    const { cycle } = cycleWith(() => objects);
    await cycle.run([{ kind: 'ping' }]);
    const renewed = await certificateFor(ca, rsa.publicKey, { days: 800 });
    objects = [rsa.key, certificateObject(renewed), certificateObject(ca.issuingPem, 'issuing-ca')];
    expect((await cycle.run([{ kind: 'ping' }])).outcome).toBe('published');
    const [afterRenewal] = await publishedKeys();
    expect(afterRenewal!.kid).toBe(rsaJwk.kid);
    expect(afterRenewal!.x5c?.[0]).toBe(derOf(renewed));
    objects = [rsa.key, certificateObject(await certificateFor(ca, rsa.publicKey, { days: -1 })), certificateObject(ca.issuingPem, 'issuing-ca')];
    await cycle.run([{ kind: 'ping' }]);
    const [afterExpiry] = await publishedKeys();
    expect(afterExpiry).toEqual(rsaJwk);
  });
});

describe('the change check date timer and certificates', () => {
  it("makes a certificate's expiry (and start of validity) a due date, so its chain goes when it expires, not at the next hourly ping", () => {
    const leaf = new X509Certificate(rsaLeaf);
    const readAt = new Date(leaf.validFromDate.getTime() - 60_000);
    expect(nextDueDate([rsa.key, certificateObject(rsaLeaf)], readAt, 0)).toEqual(leaf.validFromDate);
    expect(nextDueDate([rsa.key, certificateObject(rsaLeaf)], new Date(), 0)).toEqual(leaf.validToDate);
  });
});

