/**
 * A CipherTrust Manager cluster, end to end: key-rotated in its own process, CIPHERTRUST_URL
 * listing the three nodes of an emulated cluster, writing a real file store.
 *   - one node down: the cycle succeeds through the others, and says which node it skipped;
 *   - a lagging node (a key listed by one node answers 404 on another): no published key is
 *     withdrawn, and a new key is published once it has replicated;
 *   - every node down: the cycle fails as with a single CM (502, the set kept).
 */
import { createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { CmKeyResource } from '../../emulator/index.js';
import { startTestEmulatorCluster, type TestEmulatorCluster } from '../emulator/support.js';
import { openBackend, type TestBackend } from '../support/backends.js';
import { metricValue, rawRequest } from '../support/http.js';
import { startFunction, type RunningFunction } from '../support/processes.js';
import { PUBLISHER_PASSWORD, PUBLISHER_USER, auditRecordsIn, eventSender, publisherEnv, waitForFirstCycle, type EventAnswer } from '../support/publisher-stack.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { PUBLISH, SIGN } from './support.js';

const NODE_DOWN_FOR_MS = 1000;

interface AuditRecord {
  outcome: string;
  failure?: string;
  keys: number;
  keptUnreadable?: string[];
  removed: { kid: string }[];
}

describe('CipherTrust Manager cluster, end to end (CIPHERTRUST_URL lists three nodes)', () => {
  let cluster: TestEmulatorCluster;
  let backend: TestBackend;
  let keyRotated: RunningFunction;
  let send: (type: string) => Promise<EventAnswer>;
  let counter = 0;

  const ping = (): Promise<EventAnswer> => send('dev.knative.sources.ping');
  const metrics = async (): Promise<string> => (await rawRequest(keyRotated.url, '/metrics')).body.toString();
  const lastAudit = (): AuditRecord => auditRecordsIn<AuditRecord>(keyRotated.output()).at(-1)!;

  function addKey(): CmKeyResource {
    counter++;
    return cluster.keys.create({ name: `cluster-e2e-${counter}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
  }

  async function kidOf(key: CmKeyResource): Promise<string> {
    const pem = cluster.keys.get(key.id)!.publickey!;
    return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }));
  }

  async function publishedKids(): Promise<string[]> {
    const read = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 1024 * 1024 });
    if (read.kind !== 'found') return [];
    return (JSON.parse(read.object.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();
  }

  beforeAll(async () => {
    cluster = await startTestEmulatorCluster({ nodes: 3, users: { admin: 'admin', [PUBLISHER_USER]: PUBLISHER_PASSWORD } });
    backend = await openBackend('file');
    for (let index = 0; index < 3; index++) addKey();
    const env = publisherEnv(cluster, backend, {
      CIPHERTRUST_NODE_DOWN_FOR: `${NODE_DOWN_FOR_MS}ms`,
      CIPHERTRUST_TIMEOUT_MS: '1000',
      CIPHERTRUST_MAX_ATTEMPTS: '2',
      CIPHERTRUST_RETRY_BUDGET_MS: '1500',
    });
    keyRotated = await startFunction({ host: 'lean', target: 'key-rotated', env });
    await waitForFirstCycle(keyRotated.url);
    send = eventSender(keyRotated);
    expect(await publishedKids()).toHaveLength(3);
  });
  afterAll(async () => {
    await keyRotated?.stop();
    await cluster?.stop();
    await backend?.close();
  });
  afterEach(async () => {
    for (const node of cluster.nodes) {
      node.faults.clear();
      node.setLag(0);
      await node.up();
    }
    // Past the down period: every test starts with node 0 first again.
    await new Promise((done) => setTimeout(done, NODE_DOWN_FOR_MS + 100));
  });

  it('publishes through the other nodes while one is down, and says which node it skipped and when it is back', async () => {
    const [first] = cluster.urls;
    await cluster.nodes[0]!.down();
    const added = addKey();
    expect(await ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: 4 } });
    expect(await publishedKids()).toContain(await kidOf(added));
    expect(keyRotated.output()).toMatch(new RegExp(`"event":"ciphertrust_node_down"[^\\n]*"node":"${first}"`));
    const text = await metrics();
    expect(metricValue(text, `jwks_ciphertrust_node_down_total{node="${first}"}`)).toBe(1);
    expect(metricValue(text, `jwks_ciphertrust_node_down{node="${first}"}`)).toBe(1);

    await cluster.nodes[0]!.up();
    await new Promise((done) => setTimeout(done, NODE_DOWN_FOR_MS + 100));
    expect(await ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(keyRotated.output()).toMatch(new RegExp(`"event":"ciphertrust_node_up"[^\\n]*"node":"${first}"`));
    expect(metricValue(await metrics(), `jwks_ciphertrust_node_down{node="${first}"}`)).toBe(0);
  });

  it('withdraws no published key when a lagging node answers 404 for it, and publishes a new key once it has replicated', async () => {
    const fresh = addKey();
    expect(await ping()).toMatchObject({ status: 200, body: { outcome: 'published' } });
    const freshKid = await kidOf(fresh);
    const before = await publishedKids();
    expect(before).toContain(freshKid);

    // Node 1 lags; node 0 lists every key but fails its GETs, so they go to node 1. The fresh
    // key changed (so its public key is asked for again), and a newer key is not on node 1 yet.
    cluster.nodes[1]!.setLag(60_000);
    cluster.keys.patch(fresh.id, { labels: { ...PUBLISH, touched: 'yes' } });
    const newer = addKey();
    cluster.nodes[0]!.faults.failNext({ endpoint: 'get', status: 503, count: 50 });
    expect(await ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(await publishedKids()).toEqual(before);
    expect(lastAudit()).toMatchObject({ outcome: 'unchanged', removed: [], keptUnreadable: [freshKid] });
    expect(cluster.nodes[1]!.requests.filter((request) => request.endpoint === 'get' && request.status === 404).length).toBeGreaterThanOrEqual(2);

    // Replicated: the next cycle publishes the newer key, and the fresh one stays.
    cluster.nodes[0]!.faults.clear();
    cluster.nodes[1]!.setLag(0);
    expect(await ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: before.length + 1 } });
    expect(await publishedKids()).toEqual([...before, await kidOf(newer)].sort());
  });

  it('fails the cycle as a single CM would when every node is down, and keeps the published set', async () => {
    const before = await publishedKids();
    await Promise.all(cluster.nodes.map((node) => node.down()));
    const answer = await ping();
    expect(answer).toMatchObject({ status: 502, body: { outcome: 'failed', error: 'ciphertrust_failed' } });
    expect(lastAudit()).toMatchObject({ outcome: 'failed', failure: 'ciphertrust' });
    expect(await publishedKids()).toEqual(before);
    await Promise.all(cluster.nodes.map((node) => node.up()));
    await new Promise((done) => setTimeout(done, NODE_DOWN_FOR_MS + 100));
    expect(await ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
  });
});
