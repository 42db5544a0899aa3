/**
 * The whole publication pipeline over HTTPS: the CipherTrust Manager emulator, key-rotated in its
 * own process (lean host), and a real store of each kind. Each step of a key's life in CM is
 * driven through the emulator and published by a ping, as the hourly PingSource would.
 */
import { createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { CmKeyResource } from '../../emulator/index.js';
import type { BackendName } from '../support/backends.js';
import { metricValue, rawRequest } from '../support/http.js';
import { auditRecordsIn, startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const ENCRYPT = 4 | 8;
const PUBLISH = { jwks: 'publish' };

async function kidOf(stack: PublisherStack, id: string): Promise<string> {
  const pem = stack.emulator.keys.get(id)?.publickey;
  if (pem === undefined) throw new Error(`no public key for ${id}`);
  return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }));
}

interface KeyChangeRecord {
  kid: string;
  use?: string;
  alg?: string;
  cmKey?: { id: string; name: string; version: number; state: string };
}

interface AuditRecord {
  outcome: string;
  keptUnreadable?: string[];
  keptUnknownState?: string[];
  guard?: string;
  reason: { kinds: string[]; requests: number };
  added: KeyChangeRecord[];
  removed: KeyChangeRecord[];
}

/** Audit records the process wrote since `from` (an offset into its output). */
function auditRecords(stack: PublisherStack, from = 0): AuditRecord[] {
  return auditRecordsIn<AuditRecord>(stack.keyRotated.output().slice(from));
}

async function metrics(stack: PublisherStack): Promise<string> {
  return (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString();
}

describe.each<BackendName>(['file', 's3'])('publication from CipherTrust Manager to the %s store', (backendName) => {
  let stack: PublisherStack;
  const created: Record<string, CmKeyResource> = {};
  const kids: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startPublisherStack(backendName);
  });
  afterAll(() => stack?.close());

  async function create(label: string, input: Parameters<PublisherStack['emulator']['keys']['create']>[0]): Promise<CmKeyResource> {
    const key = stack.emulator.keys.create(input);
    created[label] = key;
    if (key.publickey !== undefined || stack.emulator.keys.get(key.id)?.publickey !== undefined) kids[label] = await kidOf(stack, key.id);
    return key;
  }

  it('refuses to publish an empty set when CM offers no key (resources null), and writes nothing', async () => {
    const answer = await stack.ping();
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({ error: 'publication_refused', guard: 'empty_set' });
    expect(await stack.publishedBytes()).toBeUndefined();
  });

  it('publishes the public half of labelled signing and encryption key pairs, with RFC 7638 kids', async () => {
    await create('rsaSig', { name: 'core-signing', algorithm: 'rsa', size: 2048, usageMask: SIGN, labels: PUBLISH });
    await create('ecSig', { name: 'gateway-signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    await create('rsaEnc', { name: 'partner-encryption', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT, labels: PUBLISH });
    await create('aes', { name: 'data-key', algorithm: 'aes', size: 256, labels: PUBLISH });
    await create('unlabelled', { name: 'internal-signing', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN });
    await create('weak', { name: 'legacy-signing', algorithm: 'rsa', size: 1024, usageMask: SIGN, labels: PUBLISH });
    await create('k1', { name: 'bitcoin-ish', algorithm: 'ec', curveid: 'secp256k1', usageMask: SIGN, labels: PUBLISH });
    await create('both', { name: 'dual-use', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN | ENCRYPT, labels: PUBLISH });
    const answer = await stack.ping();
    expect(answer).toEqual({ status: 200, body: { outcome: 'published', added: 3, removed: 0, keys: 3 } });
    expect(await stack.publishedKids()).toEqual([kids.rsaSig, kids.ecSig, kids.rsaEnc].sort());

    const set = JSON.parse((await stack.publishedBytes())!.toString()) as { keys: Record<string, string>[] };
    expect(set.keys.find((key) => key.kid === kids.rsaEnc)).toMatchObject({ kty: 'RSA', use: 'enc', alg: 'RSA-OAEP-256' });
    expect(set.keys.find((key) => key.kid === kids.ecSig)).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'sig', alg: 'ES256' });
    for (const key of set.keys) expect(Object.keys(key).some((member) => ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].includes(member))).toBe(false);
    for (const kid of Object.values(kids).filter((kid) => set.keys.some((key) => key.kid === kid))) {
      const perKid = await stack.backend.store.read(`jwk-${kid}.json` as never, { maxBytes: 65536 });
      expect(perKid.kind).toBe('found');
    }
    const output = stack.keyRotated.output();
    for (const reason of ['weak_key', 'unsupported_curve', 'ambiguous_use', 'not_key_pair']) expect(output).toContain(`"reason":"${reason}"`);
    const text = await metrics(stack);
    expect(metricValue(text, 'jwks_publisher_keys_published{use="sig",state="Active"}')).toBe(2);
    expect(metricValue(text, 'jwks_publisher_keys_published{use="enc",state="Active"}')).toBe(1);
    expect(metricValue(text, 'jwks_publisher_keys_skipped_total{reason="weak_key"}')).toBe(1);
  });

  it('writes one audit record per publication naming each added key as CM knows it', () => {
    const record = auditRecords(stack).find((candidate) => candidate.outcome === 'published')!;
    expect(record.reason).toMatchObject({ kinds: ['ping'], requests: 1 });
    expect(record.added).toContainEqual({
      kid: kids.rsaSig,
      use: 'sig',
      alg: 'RS256',
      cmKey: { id: created.rsaSig!.id, name: 'core-signing', version: 0, state: 'Active' },
    });
  });

  it('changes nothing, writes nothing and fetches no key again when CM has not changed', async () => {
    const before = await stack.publishedBytes();
    const version = (await stack.backend.store.read('jwks.json' as never, { maxBytes: 65536 })) as { object?: { version: string } };
    stack.emulator.clearRequests();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(await stack.publishedBytes()).toEqual(before);
    const after = (await stack.backend.store.read('jwks.json' as never, { maxBytes: 65536 })) as { object?: { version: string } };
    expect(after.object?.version).toBe(version.object?.version);
    expect(stack.emulator.requests.filter((request) => request.endpoint === 'get')).toEqual([]);
  });

  it('publishes a Pre-Active signing key ahead of use, but not a Pre-Active encryption key', async () => {
    await create('nextSig', { name: 'core-signing-next', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN, labels: PUBLISH, state: 'Pre-Active' });
    await create('nextEnc', { name: 'partner-encryption-next', algorithm: 'ec', curveid: 'secp384r1', usageMask: ENCRYPT, labels: PUBLISH, state: 'Pre-Active' });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, removed: 0 } });
    const published = await stack.publishedKids();
    expect(published).toContain(kids.nextSig);
    expect(published).not.toContain(kids.nextEnc);
  });

  it('adds the new version after a rotation and keeps the old one', async () => {
    const rotated = stack.emulator.keys.rotate(created.ecSig!.id);
    created.ecSigV1 = rotated;
    kids.ecSigV1 = await kidOf(stack, rotated.id);
    expect(await stack.sendEvent('com.thalesgroup.ciphertrust.key.rotated')).toMatchObject({ status: 200, body: { added: 1, removed: 0 } });
    const published = await stack.publishedKids();
    expect(published).toEqual(expect.arrayContaining([kids.ecSig, kids.ecSigV1]));
    const record = auditRecords(stack).pop()!;
    expect(record.reason.kinds).toEqual(['rotation']);
    expect(record.added[0]!.cmKey).toMatchObject({ name: 'gateway-signing', version: 1 });
  });

  it('keeps a deactivated signing key for JWKS_RETAIN_DEACTIVATED, then removes it', async () => {
    stack.emulator.keys.revoke(created.ecSig!.id, 'Superseded');
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(await stack.publishedKids()).toContain(kids.ecSig);
    stack.emulator.keys.setState(created.ecSig!.id, 'Deactivated', { deactivationDate: new Date(Date.now() - 2 * 3_600_000).toISOString() });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', removed: 1 } });
    expect(await stack.publishedKids()).not.toContain(kids.ecSig);
    expect(auditRecords(stack).pop()!.removed).toEqual([
      { kid: kids.ecSig, use: 'sig', alg: 'ES256', cmKey: { id: created.ecSig!.id, name: 'gateway-signing', version: 0, state: 'Deactivated' } },
    ]);
    expect((await stack.backend.store.read(`jwk-${kids.ecSig}.json` as never, { maxBytes: 65536 })).kind).toBe('missing');
  });

  it('removes an encryption key as soon as it is deactivated', async () => {
    stack.emulator.keys.revoke(created.rsaEnc!.id, 'CessationOfOperation');
    expect(await stack.ping()).toMatchObject({ status: 200, body: { removed: 1 } });
    expect(await stack.publishedKids()).not.toContain(kids.rsaEnc);
  });

  it('removes a compromised key at once and a destroyed one too', async () => {
    stack.emulator.keys.revoke(created.rsaSig!.id, 'KeyCompromise');
    expect(await stack.ping()).toMatchObject({ status: 200, body: { removed: 1 } });
    expect(auditRecords(stack).pop()!.removed[0]!.cmKey).toMatchObject({ id: created.rsaSig!.id, state: 'Compromised' });

    stack.emulator.keys.revoke(created.nextSig!.id, 'Superseded');
    stack.emulator.keys.destroy(created.nextSig!.id);
    expect(await stack.ping()).toMatchObject({ status: 200, body: { removed: 1 } });
    const published = await stack.publishedKids();
    expect(published).not.toContain(kids.rsaSig);
    expect(published).not.toContain(kids.nextSig);
    expect(published).toEqual([kids.ecSigV1]);
  });

  it('refuses to remove more than half of the published keys, keeps the files and says why', async () => {
    for (const name of ['a', 'b', 'c']) await create(`extra-${name}`, { name: `extra-${name}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { added: 3, keys: 4 } });
    const before = await stack.publishedBytes();
    for (const name of ['a', 'b', 'c']) stack.emulator.keys.patch(created[`extra-${name}`]!.id, { labels: {} });
    const answer = await stack.ping();
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({ guard: 'mass_removal' });
    expect(String(answer.body.message)).toContain('3 of 4');
    expect(await stack.publishedBytes()).toEqual(before);
    const record = auditRecords(stack).pop()!;
    expect(record).toMatchObject({ outcome: 'refused', guard: 'mass_removal' });
    expect(record.removed).toHaveLength(3);
    expect(metricValue(await metrics(stack), 'jwks_publisher_guard_refusals_total{guard="mass_removal"}')).toBe(1);
    expect((await rawRequest(stack.keyRotated.url, '/readyz')).body.toString()).toContain('"status":"degraded"');
  });

  it('removes compromised keys even when that is more than half of the set', async () => {
    for (const name of ['a', 'b', 'c']) stack.emulator.keys.patch(created[`extra-${name}`]!.id, { labels: PUBLISH });
    for (const name of ['a', 'b', 'c']) stack.emulator.keys.revoke(created[`extra-${name}`]!.id, 'KeyCompromise');
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', removed: 3, keys: 1 } });
    expect(await stack.publishedKids()).toEqual([kids.ecSigV1]);
  });

  it('skips one malformed key, counts it, and publishes the rest', async () => {
    await create('good', { name: 'good', algorithm: 'ec', curveid: 'secp521r1', usageMask: SIGN, labels: PUBLISH });
    await create('broken', { name: 'broken', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    stack.emulator.faults.malformPublicKey(created.broken!.id);
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, keys: 2 } });
    expect(await stack.publishedKids()).toEqual([kids.ecSigV1, kids.good].sort());
    expect(metricValue(await metrics(stack), 'jwks_publisher_keys_skipped_total{reason="malformed_public_key"}')).toBeGreaterThanOrEqual(1);
    // Once CM answers cleanly, the key is fetched again (a bad answer is never cached) and published.
    stack.emulator.faults.clear();
    kids.broken = await kidOf(stack, created.broken!.id);
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, keys: 3 } });
    expect(await stack.publishedKids()).toContain(kids.broken);
  });

  it('publishes the alg a jwks-alg label chooses, and ignores a Public Key twin of a key pair', async () => {
    const pss = await create('pss', { name: 'pss-signing', algorithm: 'rsa', size: 2048, usageMask: SIGN, labels: { ...PUBLISH, 'jwks-alg': 'PS256' } });
    stack.emulator.keys.create({ name: 'pss-signing-public', algorithm: 'rsa', objectType: 'Public Key', publicKeyOf: pss.id, labels: PUBLISH });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 1 } });
    const set = JSON.parse((await stack.publishedBytes())!.toString()) as { keys: Record<string, string>[] };
    expect(set.keys.filter((key) => key.kid === kids.pss)).toEqual([expect.objectContaining({ kty: 'RSA', use: 'sig', alg: 'PS256' })]);
    expect(stack.keyRotated.output()).toContain('"reason":"public_key_object"');
  });

  it('keeps a compromised key out once it is destroyed (Destroyed Compromised)', async () => {
    stack.emulator.keys.destroy(created.rsaSig!.id);
    expect(stack.emulator.keys.get(created.rsaSig!.id)?.state).toBe('Destroyed Compromised');
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(await stack.publishedKids()).not.toContain(kids.rsaSig);
  });

  it('keeps a published key whose public key CM suddenly answers malformed, instead of dropping it', async () => {
    stack.emulator.faults.malformPublicKey(created.good!.id);
    // A label change moves updatedAt, so the key is fetched again and comes back malformed.
    stack.emulator.keys.patch(created.good!.id, { labels: { ...PUBLISH, owner: 'gateway-team' } });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged', removed: 0 } });
    expect(await stack.publishedKids()).toContain(kids.good);
    expect(stack.keyRotated.output()).toContain(`"event":"key_kept_unreadable","kid":"${kids.good}"`);
    expect(auditRecords(stack).pop()).toMatchObject({ keptUnreadable: [kids.good] });
    expect(metricValue(await metrics(stack), 'jwks_publisher_keys_kept_unreadable')).toBe(1);
    expect((await rawRequest(stack.keyRotated.url, '/readyz')).body.toString()).toContain('"status":"degraded"');
    stack.emulator.faults.clear();
    stack.emulator.keys.patch(created.good!.id, { labels: PUBLISH });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(metricValue(await metrics(stack), 'jwks_publisher_keys_kept_unreadable')).toBe(0);
  });

  it('keeps a published key CM reports in a state it does not know, with a security log line and the metric, until CM moves it back', async () => {
    stack.emulator.faults.forceState(created.good!.id, 'Suspended');
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged', removed: 0 } });
    expect(await stack.publishedKids()).toContain(kids.good);
    expect(stack.keyRotated.output()).toMatch(new RegExp(`"event":"key_kept_unknown_state","security":true,"kid":"${kids.good}"`));
    expect(auditRecords(stack).pop()).toMatchObject({ keptUnknownState: [kids.good] });
    expect(metricValue(await metrics(stack), 'jwks_publisher_keys_kept_unknown_state')).toBe(1);
    stack.emulator.faults.clear();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(metricValue(await metrics(stack), 'jwks_publisher_keys_kept_unknown_state')).toBe(0);
  });

  it("logs once what CM says it did not understand in a listing's query, and still publishes by the label selector", async () => {
    const from = stack.keyRotated.output().length;
    stack.emulator.faults.setListingShape({ ignoredParameters: ['labels'] });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    stack.emulator.faults.clear();
    const output = stack.keyRotated.output().slice(from);
    expect(output.match(/"event":"ciphertrust_query_not_understood"/g)).toHaveLength(1);
    expect(output).toContain('"cmMessage":"Unknown query parameter: labels"');
  });

  it('removes destroyed keys at once even when they are more than half of the set and CM returns no material for them', async () => {
    const names = ['d1', 'd2', 'd3'];
    for (const name of names) await create(name, { name, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    for (const name of names) stack.emulator.keys.revoke(created[name]!.id, 'Superseded');
    const before = await stack.ping();
    expect(before).toMatchObject({ status: 200, body: { added: 3 } });
    const count = (await stack.publishedKids()).length;
    for (const name of names) stack.emulator.keys.destroy(created[name]!.id);
    expect(stack.emulator.keys.get(created.d1!.id)?.publickey).toBeUndefined();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', removed: 3, keys: count - 3 } });
    const record = auditRecords(stack).pop()!;
    expect(record.removed.map((change) => change.cmKey?.state)).toEqual(['Destroyed', 'Destroyed', 'Destroyed']);
  });

  it('publishes a key allowed to sign and encrypt with the use its jwks-use label picks', async () => {
    await create('dual', { name: 'dual-labelled', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN | ENCRYPT, labels: { ...PUBLISH, 'jwks-use': 'enc' } });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { added: 1 } });
    const set = JSON.parse((await stack.publishedBytes())!.toString()) as { keys: Record<string, string>[] };
    expect(set.keys.find((key) => key.kid === kids.dual)).toMatchObject({ use: 'enc', alg: 'ECDH-ES' });
  });

  it('leaves the files untouched and answers 502 while CM fails, then recovers', async () => {
    await create('during-outage', { name: 'during-outage', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    const before = await stack.publishedBytes();
    stack.emulator.faults.failNext({ endpoint: 'list', status: 503, count: 100 });
    const unavailable = await stack.ping();
    expect(unavailable.status).toBe(502);
    expect(unavailable.body).toMatchObject({ error: 'ciphertrust_failed' });
    expect(String(unavailable.body.message)).toContain('503');
    stack.emulator.faults.clear();
    stack.emulator.faults.hangNext({ endpoint: 'get', count: 100 });
    expect((await stack.ping()).status).toBe(502);
    expect(await stack.publishedBytes()).toEqual(before);
    stack.emulator.faults.clear();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 1 } });
    const text = await metrics(stack);
    expect(metricValue(text, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="503"}')).toBe(3);
    expect(metricValue(text, 'jwks_ciphertrust_requests_total{endpoint="keys2_get",status="timeout"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'jwks_publisher_publications_total{outcome="failed"}')).toBe(2);
  });

  it('retries a brief 503 and publishes within the same cycle', async () => {
    stack.emulator.faults.failNext({ endpoint: 'list', status: 503, count: 1 });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
  });

  it('logs in again once when CM rejects its token, and renews tokens before they expire', async () => {
    stack.emulator.faults.revokeAllTokens();
    stack.emulator.clearRequests();
    expect((await stack.ping()).status).toBe(200);
    const logins = stack.emulator.requests.filter((request) => request.endpoint === 'auth');
    expect(logins.map((request) => request.status)).toEqual([200]);
    expect(stack.emulator.requests.filter((request) => request.status === 401)).toHaveLength(1);

    stack.emulator.faults.setTokenDuration(2);
    stack.emulator.faults.revokeAllTokens();
    expect((await stack.ping()).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2200));
    stack.emulator.clearRequests();
    expect((await stack.ping()).status).toBe(200);
    expect(stack.emulator.requests.filter((request) => request.status === 401)).toEqual([]);
    expect(stack.emulator.requests[0]?.endpoint).toBe('auth');
    stack.emulator.faults.setTokenDuration(300);
  });

  it('never writes the CM password or a token to its logs', () => {
    const output = stack.keyRotated.output();
    expect(output).not.toContain('Publisher-Pa55word');
    // A JWT: header and payload both base64url JSON objects ("eyJ"), dot-separated. A kid may
    // contain "eyJ" by chance; it never contains a dot.
    expect(output).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
  });
});
