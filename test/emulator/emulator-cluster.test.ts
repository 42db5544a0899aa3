/**
 * The emulator's cluster mode on its own: several nodes over one key state, each on its own port
 * with the same CA, per-node outages, replication lag, and shared or per-node JWT validation.
 */
import { startEmulatorCluster, type CmKeyResource } from '../../emulator/index.js';
import { ManualClock, call, login, startTestEmulatorCluster, type TestEmulatorCluster } from './support.js';

const PUBLISH = { jwks: 'publish' };

function node(cluster: TestEmulatorCluster, index: number): { url: string; caPem: string } {
  return { url: cluster.nodes[index]!.url, caPem: cluster.caPem };
}

describe('emulator cluster mode', () => {
  const clock = new ManualClock();
  let cluster: TestEmulatorCluster;
  beforeAll(async () => {
    cluster = await startTestEmulatorCluster({ nodes: 3, now: clock.now });
  });
  afterAll(() => cluster?.stop());
  afterEach(async () => {
    for (const each of cluster.nodes) {
      each.setLag(0);
      each.faults.clear();
      await each.up();
    }
  });

  it('serves one key state from three nodes on three ports, each trusted through the same CA', async () => {
    expect(new Set(cluster.urls).size).toBe(3);
    expect(cluster.url).toBe(cluster.urls.join(','));
    const created = cluster.keys.create({ name: 'cluster-shared', algorithm: 'ec', curveid: 'prime256v1', labels: PUBLISH });
    for (const index of [0, 1, 2]) {
      const token = await login(node(cluster, index));
      const answer = await call(node(cluster, index), 'GET', `/api/v1/vault/keys2/${created.id}`, { token });
      expect(answer.status).toBe(200);
      expect((answer.json as unknown as CmKeyResource).publickey).toContain('BEGIN PUBLIC KEY');
    }
    // A key created through one node is there on the others at once (no lag configured).
    const token = await login(node(cluster, 2));
    const made = await call(node(cluster, 2), 'POST', '/api/v1/vault/keys2', { token, body: { name: 'via-node-2', algorithm: 'ec', curveid: 'prime256v1' } });
    expect(made.status).toBe(201);
    const onZero = await call(node(cluster, 0), 'GET', `/api/v1/vault/keys2/${(made.json as { id: string }).id}`, { token: await login(node(cluster, 0)) });
    expect(onZero.status).toBe(200);
  });

  it('takes one node down while the others keep answering, and brings it back on the same port', async () => {
    await cluster.nodes[1]!.down();
    await expect(login(node(cluster, 1))).rejects.toThrow(/ECONNREFUSED/);
    expect(typeof (await login(node(cluster, 0)))).toBe('string');
    expect(typeof (await login(node(cluster, 2)))).toBe('string');
    await cluster.nodes[1]!.up();
    expect(typeof (await login(node(cluster, 1)))).toBe('string');
  });

  it('keeps faults and request records per node', async () => {
    cluster.nodes[0]!.faults.failNext({ endpoint: 'list', status: 503 });
    cluster.nodes[0]!.clearRequests();
    cluster.nodes[1]!.clearRequests();
    const token = await login(node(cluster, 1));
    expect((await call(node(cluster, 1), 'GET', '/api/v1/vault/keys2', { token })).status).toBe(200);
    expect((await call(node(cluster, 0), 'GET', '/api/v1/vault/keys2', { token })).status).toBe(503);
    expect(cluster.nodes[0]!.requests.map((request) => request.status)).toEqual([503]);
    expect(cluster.nodes[1]!.requests.map((request) => request.status)).toEqual([200, 200]);
  });

  it('a lagging node answers 404 for, and leaves out of its listings, keys younger than its lag; the others do not', async () => {
    cluster.nodes[1]!.setLag(2000);
    const fresh = cluster.keys.create({ name: 'cluster-fresh', algorithm: 'ec', curveid: 'prime256v1', labels: { lag: 'test' } });
    const laggy = node(cluster, 1);
    const token = await login(laggy);
    const get = await call(laggy, 'GET', `/api/v1/vault/keys2/${fresh.id}`, { token });
    expect(get.status).toBe(404);
    expect(get.json.code).toBe(16);
    expect(String(get.json.codeDesc)).toContain('NCERRResourceNotFound');
    expect((await call(laggy, 'GET', '/api/v1/vault/keys2/cluster-fresh?type=name', { token })).status).toBe(404);
    expect((await call(laggy, 'GET', '/api/v1/vault/keys2?labels=lag=test', { token })).json).toMatchObject({ total: 0, resources: null });
    // Another node already has it.
    expect((await call(node(cluster, 0), 'GET', `/api/v1/vault/keys2/${fresh.id}`, { token: await login(node(cluster, 0)) })).status).toBe(200);
    // A new version is a new key: not on the lagging node yet either; the older version is.
    clock.advance(2);
    expect((await call(laggy, 'GET', `/api/v1/vault/keys2/${fresh.id}`, { token })).status).toBe(200);
    const version = cluster.keys.rotate(fresh.id);
    const listed = await call(laggy, 'GET', '/api/v1/vault/keys2?labels=lag=test', { token });
    expect((listed.json.resources as CmKeyResource[]).map((key) => key.id)).toEqual([fresh.id]);
    expect((await call(laggy, 'GET', `/api/v1/vault/keys2/${version.id}`, { token })).status).toBe(404);
    clock.advance(2);
    expect((await call(laggy, 'GET', `/api/v1/vault/keys2/${version.id}`, { token })).status).toBe(200);
    expect((await call(laggy, 'GET', '/api/v1/vault/keys2?labels=lag=test', { token })).json.total).toBe(2);
  });

  it('sets, shows and clears a node’s lag over its fault endpoint too (the local stack)', async () => {
    const fresh = cluster.keys.create({ name: 'cluster-rest-lag', algorithm: 'ec', curveid: 'prime256v1' });
    const laggy = node(cluster, 2);
    const token = await login(laggy);
    const set = await call(laggy, 'POST', '/emulator/v1/faults', { token, body: { lagMs: 5000 } });
    expect(set.json).toMatchObject({ lagMs: 5000 });
    expect((await call(laggy, 'GET', `/api/v1/vault/keys2/${fresh.id}`, { token })).status).toBe(404);
    // The other nodes are not lagging.
    expect((await call(node(cluster, 0), 'GET', '/emulator/v1/faults', { token: await login(node(cluster, 0)) })).json).toMatchObject({ lagMs: 0 });
    expect((await call(laggy, 'POST', '/emulator/v1/faults', { token, body: { lagMs: -1 } })).status).toBe(400);
    expect((await call(laggy, 'DELETE', '/emulator/v1/faults', { token })).json).toMatchObject({ lagMs: 0 });
    expect((await call(laggy, 'GET', `/api/v1/vault/keys2/${fresh.id}`, { token })).status).toBe(200);
  });

  it('shares JWT validation by default: a token from one node works on every node', async () => {
    const token = await login(node(cluster, 0));
    for (const index of [1, 2]) expect((await call(node(cluster, index), 'GET', '/api/v1/vault/keys2', { token })).status).toBe(200);
  });

  it('refuses a bad lag or node count', async () => {
    expect(() => cluster.nodes[0]!.setLag(-1)).toThrow('lagMs must be');
    await expect(startEmulatorCluster({ nodes: 0, tlsDir: '/nonexistent' })).rejects.toThrow('nodes must be');
  });
});

describe('emulator cluster mode with per-node JWT validation', () => {
  let cluster: TestEmulatorCluster;
  beforeAll(async () => {
    cluster = await startTestEmulatorCluster({ nodes: 2, sharedTokens: false });
  });
  afterAll(() => cluster?.stop());

  it("answers another node's JWT with CM's 401 and its own with 200; refresh tokens work on every node", async () => {
    const first = node(cluster, 0);
    const second = node(cluster, 1);
    const login0 = await call(first, 'POST', '/api/v1/auth/tokens', { body: { username: 'admin', password: 'admin' } });
    const { jwt, refresh_token: refreshToken } = login0.json as { jwt: string; refresh_token: string };
    expect((await call(first, 'GET', '/api/v1/vault/keys2', { token: jwt })).status).toBe(200);
    const refused = await call(second, 'GET', '/api/v1/vault/keys2', { token: jwt });
    expect(refused.status).toBe(401);
    expect(String(refused.json.codeDesc)).toContain('NCERRUnauthorizedAccess');
    // Refresh tokens live in the replicated database: node 1 honours node 0's, and issues its own JWT.
    const refreshed = await call(second, 'POST', '/api/v1/auth/tokens', { body: { grant_type: 'refresh_token', refresh_token: refreshToken } });
    expect(refreshed.status).toBe(200);
    expect((await call(second, 'GET', '/api/v1/vault/keys2', { token: (refreshed.json as { jwt: string }).jwt })).status).toBe(200);
  });
});
