/**
 * The publisher's CM client against an emulated CM cluster listed node by node: failover when a
 * node refuses connections or answers 5xx, a failed node tried last for a while and first again
 * later, every node down failing as a single CM does, a node refusing another node's JWT, and a
 * key listed by one node but not yet replicated to the node answering its GET.
 */
import { CipherTrustClient } from '../../shared/ciphertrust/client.js';
import { CipherTrustError } from '../../shared/ciphertrust/errors.js';
import { CipherTrustKeyReader } from '../../shared/ciphertrust/key-reader.js';
import type { NodeChange } from '../../shared/ciphertrust/nodes.js';
import { CipherTrustSession } from '../../shared/ciphertrust/session.js';
import { CipherTrustTransport } from '../../shared/ciphertrust/transport.js';
import { startTestEmulator, startTestEmulatorCluster, type TestEmulatorCluster } from '../emulator/support.js';

const PUBLISH = { jwks: 'publish' };
const NODE_DOWN_MS = 60_000;

/** The CM client as createPublisher wires it, with a clock the test moves and records of its waits. */
function cmClient(cluster: TestEmulatorCluster, options: { maxAttempts?: number; nodes?: readonly string[] } = {}) {
  let offsetMs = 0;
  const sleeps: number[] = [];
  const changes: NodeChange[] = [];
  const attempts: string[] = [];
  const transport = new CipherTrustTransport({
    nodes: options.nodes ?? cluster.urls,
    nodeDownMs: NODE_DOWN_MS,
    onNodeChange: (change) => changes.push(change),
    caPem: cluster.caPem,
    clientCertPem: undefined,
    clientKeyPem: undefined,
    timeoutMs: 2000,
    retry: { maxAttempts: options.maxAttempts ?? 3, budgetMs: 5000, baseDelayMs: 10, maxDelayMs: 20 },
    maxSockets: 4,
    observe: (endpoint, outcome, _seconds, node) => attempts.push(`${endpoint} ${outcome} ${cluster.urls.indexOf(node)}`),
    clock: {
      now: () => Date.now() + offsetMs,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((done) => setTimeout(done, ms));
      },
      random: () => 0.5,
    },
  });
  const session = new CipherTrustSession(transport, { type: 'password', username: 'admin', password: 'admin' }, undefined);
  const client = new CipherTrustClient(transport, session);
  return {
    client,
    transport,
    sleeps,
    changes,
    attempts,
    advance: (ms: number) => (offsetMs += ms),
  };
}

function statuses(cluster: TestEmulatorCluster, index: number): string[] {
  return cluster.nodes[index]!.requests.map((request) => `${request.endpoint} ${request.status}`);
}

function clearRecords(cluster: TestEmulatorCluster): void {
  for (const node of cluster.nodes) node.clearRequests();
}

describe('CipherTrust Manager cluster, node by node (shared JWT validation)', () => {
  let cluster: TestEmulatorCluster;
  beforeAll(async () => {
    cluster = await startTestEmulatorCluster({ nodes: 3 });
    cluster.keys.create({ name: 'cluster-key', algorithm: 'ec', curveid: 'prime256v1', labels: PUBLISH });
  });
  afterAll(() => cluster?.stop());
  afterEach(async () => {
    for (const node of cluster.nodes) {
      node.faults.clear();
      node.setLag(0);
      await node.up();
    }
    clearRecords(cluster);
  });

  it('moves a request to the next node at once when a node refuses connections, tries it last for a while, then first again', async () => {
    const cm = cmClient(cluster);
    await cluster.nodes[0]!.down();
    expect(await cm.client.listKeys('jwks=publish', 10)).toHaveLength(1);
    // No backoff: the next node is asked as soon as the first one failed.
    expect(cm.sleeps).toEqual([]);
    // The login found node 0 down; the listing then went straight to node 1.
    expect(cm.attempts).toEqual(['auth_tokens network_error 0', 'auth_tokens 200 1', 'keys2_list 200 1']);
    expect(cm.changes.map(({ node, state }) => [node, state])).toEqual([[cluster.urls[0], 'down']]);
    expect(cm.changes[0]!.reason).toContain('ECONNREFUSED');

    // Back up, but within the down period: the rest of the cycle does not wait on it again.
    await cluster.nodes[0]!.up();
    clearRecords(cluster);
    await cm.client.listKeys('jwks=publish', 10);
    expect(statuses(cluster, 0)).toEqual([]);
    expect(statuses(cluster, 1)).toEqual(['list 200']);

    // Later, it is first again, and reported back.
    cm.advance(NODE_DOWN_MS + 1);
    await cm.client.listKeys('jwks=publish', 10);
    expect(statuses(cluster, 0)).toEqual(['list 200']);
    expect(cm.changes.at(-1)).toEqual({ node: cluster.urls[0], state: 'up' });
    cm.transport.close();
  });

  it('skips a node answering 503 or 500 within the same try', async () => {
    const cm = cmClient(cluster);
    await cm.client.listKeys('jwks=publish', 10);
    cluster.nodes[0]!.faults.failNext({ endpoint: 'list', status: 503 });
    cluster.nodes[1]!.faults.failNext({ endpoint: 'list', status: 500 });
    clearRecords(cluster);
    expect(await cm.client.listKeys('jwks=publish', 10)).toHaveLength(1);
    expect([statuses(cluster, 0), statuses(cluster, 1), statuses(cluster, 2)]).toEqual([['list 503'], ['list 500'], ['list 200']]);
    expect(cm.sleeps).toEqual([]);
    expect(cm.changes.map(({ node, state }) => [cluster.urls.indexOf(node), state])).toEqual([
      [0, 'down'],
      [1, 'down'],
    ]);
    cm.transport.close();
  });

  it('fails as a single CM does when every node is down: whole rounds, bounded by the retry policy', async () => {
    const cm = cmClient(cluster, { maxAttempts: 2 });
    await Promise.all(cluster.nodes.map((node) => node.down()));
    const failure = await cm.client.listKeys('jwks=publish', 10).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CipherTrustError);
    expect(failure).toMatchObject({ failure: 'network', endpoint: 'auth_tokens', details: { attempts: 6 } });
    // Two rounds over three nodes, one backoff between them.
    expect(cm.attempts.map((attempt) => attempt.split(' ')[2])).toEqual(['0', '1', '2', '0', '1', '2']);
    expect(cm.sleeps).toHaveLength(1);

    // Back: the next call works, and every node that answers is reported up.
    await Promise.all(cluster.nodes.map((node) => node.up()));
    expect(await cm.client.listKeys('jwks=publish', 10)).toHaveLength(1);
    expect(cm.changes.filter((change) => change.state === 'up').map(({ node }) => cluster.urls.indexOf(node))).toEqual([0]);
    cm.transport.close();
  });

  it('skips a node whose certificate the CA does not vouch for (one node’s expired certificate), but fails on it alone', async () => {
    // Another emulator, with its own CA: to this client, a node with a bad certificate.
    const stranger = await startTestEmulator();
    try {
      const cm = cmClient(cluster, { nodes: [stranger.url, ...cluster.urls] });
      expect(await cm.client.listKeys('jwks=publish', 10)).toHaveLength(1);
      expect(cm.changes.map(({ node, state }) => [node, state])).toEqual([[stranger.url, 'down']]);
      expect(cm.changes[0]!.reason).toMatch(/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
      cm.transport.close();
      const alone = cmClient(cluster, { nodes: [stranger.url] });
      await expect(alone.client.listKeys('jwks=publish', 10)).rejects.toMatchObject({ failure: 'tls', details: { attempts: 1 } });
      alone.transport.close();
    } finally {
      await stranger.stop();
    }
  });

  it('returns a single node’s 500 as before (one node is the old behaviour)', async () => {
    const single = new CipherTrustTransport({
      nodes: [cluster.urls[0]!],
      caPem: cluster.caPem,
      clientCertPem: undefined,
      clientKeyPem: undefined,
      timeoutMs: 2000,
      retry: { maxAttempts: 3, budgetMs: 5000, baseDelayMs: 10, maxDelayMs: 20 },
      maxSockets: 1,
    });
    cluster.nodes[0]!.faults.failNext({ endpoint: 'auth', status: 500 });
    const answer = await single.send({ endpoint: 'auth_tokens', method: 'POST', path: '/api/v1/auth/tokens', body: { username: 'admin', password: 'admin' } });
    expect(answer.status).toBe(500);
    expect(statuses(cluster, 0)).toEqual(['auth 500']);
    single.close();
  });

  it('asks again for a key listed by one node whose GET another node answers 404, then reads it once replicated', async () => {
    const fresh = cluster.keys.create({ name: 'cluster-fresh', algorithm: 'ec', curveid: 'prime256v1', labels: { lag: 'test' } });
    const cm = cmClient(cluster);
    const waits: number[] = [];
    const reader = new CipherTrustKeyReader(cm.client, {
      selector: 'lag=test',
      pageSize: 10,
      concurrency: 1,
      sleep: (ms) => {
        waits.push(ms);
        // Replication catches up during the second wait.
        if (waits.length === 2) cluster.nodes[1]!.setLag(0);
        return Promise.resolve();
      },
    });
    // Node 0 lists the key, then fails the GET; node 1 has not replicated it yet.
    cluster.nodes[0]!.faults.failNext({ endpoint: 'get', status: 503, count: 10 });
    cluster.nodes[1]!.setLag(60_000);
    const read = await reader.read();
    expect(read.keys.map((key) => [key.id, key.publickey?.includes('BEGIN PUBLIC KEY')])).toEqual([[fresh.id, true]]);
    expect(statuses(cluster, 1).filter((status) => status.startsWith('get'))).toEqual(['get 404', 'get 404', 'get 200']);
    expect(waits).toEqual([300, 700]);
    cm.transport.close();
  });

  it('keeps a listed key whose GET stays 404, as listed and without a public key (never as gone)', async () => {
    const fresh = cluster.keys.create({ name: 'cluster-lagging', algorithm: 'ec', curveid: 'prime256v1', labels: { lag: 'stays' } });
    const cm = cmClient(cluster);
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'lag=stays', pageSize: 10, concurrency: 1, sleep: () => Promise.resolve() });
    cluster.nodes[0]!.faults.failNext({ endpoint: 'get', status: 503, count: 10 });
    cluster.nodes[1]!.setLag(60_000);
    const read = await reader.read();
    expect(read.keys.map((key) => [key.id, key.publickey])).toEqual([[fresh.id, undefined]]);
    expect(read.malformed.map(({ id }) => id)).toEqual([fresh.id]);
    expect(read.malformed[0]!.problem).toContain('404');
    cm.transport.close();
  });
});

describe('CipherTrust Manager cluster whose nodes honour only their own JWTs', () => {
  let cluster: TestEmulatorCluster;
  beforeAll(async () => {
    cluster = await startTestEmulatorCluster({ nodes: 2, sharedTokens: false });
  });
  afterAll(() => cluster?.stop());

  it("logs in again on a node that refuses another node's JWT, once, and goes on", async () => {
    const cm = cmClient(cluster);
    await cm.client.listKeys('jwks=publish', 10);
    expect(statuses(cluster, 0)).toEqual(['auth 200', 'list 200']);
    await cluster.nodes[0]!.down();
    expect(await cm.client.listKeys('jwks=publish', 10)).toEqual([]);
    expect(statuses(cluster, 1)).toEqual(['list 401', 'auth 200', 'list 200']);
    // Node 1's JWT is used from then on.
    await cm.client.listKeys('jwks=publish', 10);
    expect(statuses(cluster, 1)).toEqual(['list 401', 'auth 200', 'list 200', 'list 200']);
    cm.transport.close();
  });
});
