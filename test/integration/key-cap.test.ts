/**
 * JWKS_MAX_KEYS over loopback, with the real processes: key-rotated (lean host) publishing from the
 * CipherTrust Manager emulator to a store of each kind, and jwks-get serving from it. A set over
 * the cap is refused like the other guards (409, audit record, metric) and the served set stays;
 * a set at the cap publishes; a compromised key is withdrawn even when keys wait for room.
 */
import { createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { CmKeyResource } from '../../emulator/index.js';
import type { BackendName } from '../support/backends.js';
import { metricValue, rawRequest } from '../support/http.js';
import { runToExit, startFunction, type RunningFunction } from '../support/processes.js';
import { auditRecordsIn, startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';

const MAX_KEYS = 3;
const SIGN = 1 | 2;
const PUBLISH = { jwks: 'publish' };

describe.each<BackendName>(['file', 's3'])('JWKS_MAX_KEYS with the %s store', (backendName) => {
  let stack: PublisherStack;
  let jwksGet: RunningFunction;
  const keys: CmKeyResource[] = [];

  beforeAll(async () => {
    stack = await startPublisherStack(backendName, { env: { JWKS_MAX_KEYS: String(MAX_KEYS) } });
  });
  afterAll(async () => {
    await jwksGet?.stop();
    await stack?.close();
  });

  function addKey(): CmKeyResource {
    const key = stack.emulator.keys.create({ name: `capped-${keys.length}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    keys.push(key);
    return key;
  }

  async function kidOf(key: CmKeyResource): Promise<string> {
    const pem = stack.emulator.keys.get(key.id)?.publickey;
    if (pem === undefined) throw new Error(`no public key for ${key.id}`);
    return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }));
  }

  async function servedKids(): Promise<string[]> {
    const response = await rawRequest(jwksGet.url, '/jwks');
    expect(response.status).toBe(200);
    return (JSON.parse(response.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();
  }

  const metrics = async (): Promise<string> => (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString();
  const lastAudit = (): Record<string, unknown> => auditRecordsIn(stack.keyRotated.output()).pop()!;

  it('publishes a set of exactly JWKS_MAX_KEYS keys, and reports its size beside the caps', async () => {
    for (let index = 0; index < MAX_KEYS; index++) addKey();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: MAX_KEYS } });
    jwksGet = await startFunction({ host: 'lean', target: 'jwks-get', env: { ...stack.backend.env, JWKS_REVALIDATE_MS: '50' }, waitForReady: true });
    expect(await servedKids()).toEqual((await Promise.all(keys.map(kidOf))).sort());
    const text = await metrics();
    expect(metricValue(text, 'jwks_publisher_set_keys')).toBe(MAX_KEYS);
    expect(metricValue(text, 'jwks_publisher_set_max_keys')).toBe(MAX_KEYS);
    expect(metricValue(text, 'jwks_publisher_set_bytes')).toBe((await stack.publishedBytes())!.length);
    expect(metricValue(text, 'jwks_publisher_set_max_bytes')).toBe(4 * 1024 * 1024);
  });

  it('refuses one key more with 409, keeps the stored and served set, and says why in the audit record and the metric', async () => {
    const before = await stack.publishedBytes();
    const served = await servedKids();
    const refusedBefore = metricValue(await metrics(), 'jwks_publisher_publications_total{outcome="refused"}');
    const extra = addKey();
    const answer = await stack.ping();
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({ outcome: 'refused', error: 'publication_refused', guard: 'max_keys', keys: MAX_KEYS + 1 });
    expect(String(answer.body.message)).toContain(`${MAX_KEYS + 1} keys, over JWKS_MAX_KEYS (${MAX_KEYS})`);
    expect(await stack.publishedBytes()).toEqual(before);
    // Past several revalidations of jwks-get: still the set of before.
    await new Promise((done) => setTimeout(done, 300));
    expect(await servedKids()).toEqual(served);
    expect(served).not.toContain(await kidOf(extra));
    const record = lastAudit();
    expect(record).toMatchObject({ outcome: 'refused', guard: 'max_keys', keys: MAX_KEYS + 1, added: [{ kid: await kidOf(extra) }] });
    expect(String(record.message)).toContain('JWKS_MAX_KEYS');
    const text = await metrics();
    expect(metricValue(text, 'jwks_publisher_guard_refusals_total{guard="max_keys"}')).toBe(1);
    expect(metricValue(text, 'jwks_publisher_publications_total{outcome="refused"}')).toBe(refusedBefore + 1);
    expect(metricValue(text, 'jwks_publisher_set_keys')).toBe(MAX_KEYS);
  });

  it('withdraws a compromised key at once although keys wait for room, and publishes them once they fit', async () => {
    const [compromised] = keys as [CmKeyResource];
    const waiting = [keys[MAX_KEYS]!, addKey()];
    stack.emulator.keys.revoke(compromised.id, 'KeyCompromise');
    // 2 kept + 2 waiting = 4 keys, over the cap: the compromised key goes, the two others wait.
    const answer = await stack.ping();
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'published', removed: 1, added: 0, keys: MAX_KEYS - 1, guard: 'max_keys' } });
    expect(String(answer.body.message)).toContain('2 new key(s) held back');
    expect(lastAudit()).toMatchObject({ outcome: 'published', guard: 'max_keys', added: [], removed: [{ kid: await kidOf(compromised), cmKey: { state: 'Compromised' } }] });
    expect(await stack.publishedKids()).toEqual((await Promise.all(keys.slice(1, MAX_KEYS).map(kidOf))).sort());
    await new Promise((done) => setTimeout(done, 300));
    expect(await servedKids()).not.toContain(await kidOf(compromised));

    // Still 4 without a withdrawal: refused until an operator makes room (here: unlabels one).
    expect(await stack.ping()).toMatchObject({ status: 409, body: { guard: 'max_keys' } });
    stack.emulator.keys.patch(waiting[1]!.id, { labels: {} });
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, keys: MAX_KEYS } });
    expect(await stack.publishedKids()).toContain(await kidOf(waiting[0]!));
    expect(metricValue(await metrics(), 'jwks_publisher_set_keys')).toBe(MAX_KEYS);
  });
});

describe('JWKS_MAX_KEYS validation at start', () => {
  it.each(['0', 'ten', '-3', '1001'])('key-rotated refuses JWKS_MAX_KEYS=%s naming the variable, and exits 78', async (value) => {
    const { code, output } = await runToExit({ FUNCTION_TARGET: 'key-rotated', JWKS_MAX_KEYS: value, CIPHERTRUST_URL: 'https://127.0.0.1:1', CIPHERTRUST_USERNAME: 'u', CIPHERTRUST_PASSWORD: 'p' });
    expect(code).toBe(78);
    const line = JSON.parse(output.trim().split('\n').pop()!) as { event: string; problems: string[] };
    expect(line.event).toBe('config_refused');
    expect(line.problems).toEqual([`JWKS_MAX_KEYS must be an integer from 1 to 1000 (got "${value}")`]);
  });
});
