/**
 * key-rotated's HTTP face: CloudEvents in both modes, the answers Knative delivery acts on,
 * coalescing of bursts, the optional shared secret, and the other CM grants.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudEvent, HTTP } from 'cloudevents';
import { eventually, metricValue, rawRequest } from '../support/http.js';
import { startFunction } from '../support/processes.js';
import { credentialValues, expectNoSecretsInLogs } from '../support/log-secrets.js';
import { PUBLISHER_USER, publisherEnv, startPublisherStack, waitForFirstCycle, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const ROTATED = 'com.thalesgroup.ciphertrust.key.rotated';

function seed(stack: PublisherStack, count: number): void {
  for (let index = 0; index < count; index++) {
    stack.emulator.keys.create({ name: `signing-${index}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { jwks: 'publish' } });
  }
}

describe('key-rotated events', () => {
  let stack: PublisherStack;

  beforeAll(async () => {
    // Small pages, so one listing cycle is several requests and paging is exercised.
    // 25 keys over three pages, and more as the tests rotate: above the default key cap (20), which is key-cap.test.ts's subject.
    stack = await startPublisherStack('file', { env: { CIPHERTRUST_PAGE_SIZE: '10', JWKS_MAX_KEYS: '200' } });
    seed(stack, 25);
  });
  afterAll(() => stack?.close());

  it('publishes on a structured-mode rotation event, paging through the whole listing', async () => {
    const message = HTTP.structured(new CloudEvent({ id: 'rot-1', source: '/rotation-pipeline', type: ROTATED, data: { id: 'ignored' } }));
    stack.emulator.clearRequests();
    const response = await rawRequest(stack.keyRotated.url, '/', {
      method: 'POST',
      headers: message.headers as Record<string, string>,
      body: message.body as string,
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString())).toMatchObject({ outcome: 'published', keys: 25 });
    const pages = stack.emulator.requests.filter((request) => request.endpoint === 'list');
    const pass = [
      ['0', '10', 'jwks=publish'],
      ['10', '10', 'jwks=publish'],
      ['20', '10', 'jwks=publish'],
    ];
    // Several pages are not a snapshot: a second pass that lists the same ids confirms the first.
    expect(pages.map((request) => [request.query.skip, request.query.limit, request.query.labels])).toEqual([...pass, ...pass]);
    expect(stack.emulator.requests.filter((request) => request.endpoint === 'get')).toHaveLength(25);
  });

  it('turns a burst of 100 events into at most 2 listing cycles, and answers every one', async () => {
    stack.emulator.keys.create({ name: 'burst', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN, labels: { jwks: 'publish' } });
    stack.emulator.faults.setLatency(20);
    stack.emulator.clearRequests();
    const before = metricValue((await rawRequest(stack.keyRotated.url, '/metrics')).body.toString(), 'jwks_publisher_cycle_duration_seconds_count');
    const answers = await Promise.all(Array.from({ length: 100 }, () => stack.sendEvent(ROTATED)));
    stack.emulator.faults.setLatency(0);
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    // Two passes per listing cycle (the second confirms the first), at most two cycles.
    const firstPages = stack.emulator.requests.filter((request) => request.endpoint === 'list' && request.query.skip === '0');
    expect(firstPages.length).toBeGreaterThanOrEqual(2);
    expect(firstPages.length).toBeLessThanOrEqual(4);
    const after = metricValue((await rawRequest(stack.keyRotated.url, '/metrics')).body.toString(), 'jwks_publisher_cycle_duration_seconds_count');
    expect(after - before).toBeLessThanOrEqual(2);
    expect(after - before).toBeGreaterThanOrEqual(1);
    expect(await stack.publishedKids()).toHaveLength(26);
  });

  it('acknowledges and ignores event types it does not act on, with a log line', async () => {
    const answer = await stack.sendEvent('com.example.unrelated');
    expect(answer).toEqual({ status: 202, body: { status: 'ignored', message: 'no event type this function acts on' } });
    await eventually(() => Promise.resolve(stack.keyRotated.output().includes('"event":"event_ignored"')));
  });

  it.each([
    ['plain JSON', { 'content-type': 'application/json' }, '{"hello":"world"}'],
    ['a CloudEvent without source', { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-type': ROTATED }, ''],
    ['broken structured JSON', { 'content-type': 'application/cloudevents+json' }, '{"specversion":'],
  ])('answers 400 with a JSON reason to %s', async (_case, headers, body) => {
    const response = await rawRequest(stack.keyRotated.url, '/', { method: 'POST', headers, body });
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toBe('application/json');
    expect(JSON.parse(response.body.toString())).toMatchObject({ error: 'invalid_cloudevent' });
  });

  it('refuses a body over the limit with 413, without reading it all', async () => {
    const response = await rawRequest(stack.keyRotated.url, '/', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: Buffer.alloc(200 * 1024, 0x20),
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body.toString())).toMatchObject({ error: 'too_large' });
  });

  it('answers probes, 405 for other methods and 404 elsewhere', async () => {
    expect((await rawRequest(stack.keyRotated.url, '/healthz')).status).toBe(200);
    const ready = JSON.parse((await rawRequest(stack.keyRotated.url, '/readyz')).body.toString()) as Record<string, unknown>;
    expect(ready.status).toBe('ok');
    expect(['published', 'unchanged']).toContain(ready.lastOutcome);
    const get = await rawRequest(stack.keyRotated.url, '/');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await rawRequest(stack.keyRotated.url, '/jwks')).status).toBe(404);
    const text = (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString();
    expect(metricValue(text, 'jwks_publisher_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metricValue(text, 'jwks_publisher_events_total{disposition="invalid"}')).toBe(3);
    // Alerted-on series exist before their first event (increase() needs a prior sample).
    expect(text).toContain('jwks_publisher_guard_refusals_total{guard="mass_removal"} 0');
    expect(text).toContain('jwks_publisher_keys_skipped_total{reason="private_key_material"} 0');
  });

  it('publishes when the emulator posts its own CloudEvent for a rotation (the webhook stand-in)', async () => {
    const before = await stack.publishedKids();
    stack.emulator.setEventSink(stack.keyRotated.url);
    try {
      const rotated = stack.emulator.keys.rotate(stack.emulator.keys.list().find((key) => key.name === 'burst')!.id);
      const deadline = Date.now() + 5000;
      while ((await stack.publishedKids()).length === before.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await stack.publishedKids()).toHaveLength(before.length + 1);
      await eventually(() => Promise.resolve(stack.keyRotated.output().includes(`"eventType":"${ROTATED}"`)));
      expect(rotated.version).toBe(1);
    } finally {
      stack.emulator.setEventSink(undefined);
    }
  });
});

describe('key-rotated with a shared secret', () => {
  const secret = 'a-shared-secret-of-at-least-32-characters';
  let stack: PublisherStack;

  beforeAll(async () => {
    stack = await startPublisherStack('file', { env: { KEY_ROTATED_SHARED_SECRET: secret } });
    seed(stack, 2);
  });
  afterAll(() => stack?.close());

  it('refuses events without the secret or with a wrong one, and accepts the right one', async () => {
    expect(await stack.ping()).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect(await stack.sendEvent(ROTATED, { authorization: `Bearer ${secret}x` })).toMatchObject({ status: 401 });
    expect(await stack.sendEvent(ROTATED, { authorization: `Bearer ${secret}` })).toMatchObject({ status: 200, body: { outcome: 'published' } });
    expect(stack.keyRotated.output()).not.toContain(secret);
    expect((await rawRequest(stack.keyRotated.url, '/healthz')).status).toBe(200);
  });
});

describe('key-rotated with other CipherTrust grants', () => {
  let stack: PublisherStack;

  beforeAll(async () => {
    stack = await startPublisherStack('file');
    seed(stack, 2);
  });
  afterAll(() => stack?.close());

  it('publishes once at start, before any event, so a fresh deployment gets its set at once', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'jwks-startup-'));
    const fn = await startFunction({ host: 'lean', target: 'key-rotated', env: { ...stack.env, JWKS_STORE: `file://${directory}` } });
    try {
      await waitForFirstCycle(fn.url);
      const ready = JSON.parse((await rawRequest(fn.url, '/readyz')).body.toString()) as { lastOutcome: string };
      expect(ready.lastOutcome).toBe('published');
      const set = JSON.parse(await readFile(join(directory, 'jwks.json'), 'utf8')) as { keys: unknown[] };
      expect(set.keys).toHaveLength(2);
      await eventually(() => Promise.resolve(fn.output().includes('"kinds":["startup"]')));
    } finally {
      await fn.stop();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('logs in with a refresh token', async () => {
    const login = await fetchToken(stack);
    const env = publisherEnv(stack.emulator, stack.backend, { CIPHERTRUST_PASSWORD: '', CIPHERTRUST_USERNAME: '', CIPHERTRUST_REFRESH_TOKEN: login.refresh_token });
    stack.emulator.clearRequests();
    const fn = await startFunction({ host: 'lean', target: 'key-rotated', env });
    await waitForFirstCycle(fn.url);
    try {
      const response = await rawRequest(fn.url, '/', { method: 'POST', headers: pingHeaders() });
      expect(response.status).toBe(200);
      expect(stack.emulator.requests.find((request) => request.endpoint === 'auth')?.grantType).toBe('refresh_token');
      expect(fn.output()).not.toContain(login.refresh_token);
    } finally {
      await fn.stop();
    }
  });

  it('logs in with a client certificate (client_credential over mTLS)', async () => {
    const client = await stack.emulator.issueClientCertificate('jwks-publisher');
    const clientId = stack.emulator.logins.registerClient({ commonName: 'jwks-publisher' });
    const env = publisherEnv(stack.emulator, stack.backend, {
      CIPHERTRUST_PASSWORD: '',
      CIPHERTRUST_USERNAME: '',
      CIPHERTRUST_CLIENT_CERT_FILE: client.certFile,
      CIPHERTRUST_CLIENT_KEY_FILE: client.keyFile,
      CIPHERTRUST_CLIENT_ID: clientId,
    });
    const issuedBefore = stack.emulator.logins.refreshTokensIssued;
    stack.emulator.clearRequests();
    const fn = await startFunction({ host: 'lean', target: 'key-rotated', env });
    await waitForFirstCycle(fn.url);
    try {
      expect((await rawRequest(fn.url, '/', { method: 'POST', headers: pingHeaders() })).status).toBe(200);
      expect(stack.emulator.requests.find((request) => request.endpoint === 'auth')?.grantType).toBe('client_credential');
      // A client gets no refresh token: nothing is left behind in CM.
      expect(stack.emulator.logins.refreshTokensIssued).toBe(issuedBefore);
    } finally {
      await fn.stop();
    }
  });

  it('logs in with the password once and revokes the refresh token it got on SIGTERM', async () => {
    const before = stack.emulator.logins.listRefreshTokens().length;
    stack.emulator.clearRequests();
    const fn = await startFunction({ host: 'lean', target: 'key-rotated', env: stack.env });
    await waitForFirstCycle(fn.url);
    let ours: ReturnType<typeof stack.emulator.logins.listRefreshTokens>;
    try {
      expect((await rawRequest(fn.url, '/', { method: 'POST', headers: pingHeaders() })).status).toBe(200);
      ours = stack.emulator.logins.listRefreshTokens().slice(before);
      expect(ours).toEqual([expect.objectContaining({ username: PUBLISHER_USER, revoked: false })]);
      // Its id is logged (for an administrator to delete it if the pod is lost); the token is not.
      expect(fn.output()).toContain(`"refreshTokenId":"${ours[0]!.id}"`);
    } finally {
      await fn.stop();
    }
    expect(stack.emulator.logins.listRefreshTokens().slice(before)).toEqual([expect.objectContaining({ id: ours[0]!.id, revoked: true })]);
    expect(stack.emulator.requests.filter((request) => request.endpoint === 'auth_revoke').map((request) => request.status)).toEqual([200]);
    expect(fn.output()).toContain('"event":"ciphertrust_refresh_token_revoked"');
    expectNoSecretsInLogs(fn.output(), { secrets: credentialValues(stack.env) });
  });

  it('answers 502 naming the refusal when CM rejects the login, without retrying it', async () => {
    const env = publisherEnv(stack.emulator, stack.backend, { CIPHERTRUST_PASSWORD: 'wrong-password' });
    const fn = await startFunction({ host: 'lean', target: 'key-rotated', env });
    await waitForFirstCycle(fn.url);
    try {
      stack.emulator.clearRequests();
      const response = await rawRequest(fn.url, '/', { method: 'POST', headers: pingHeaders() });
      expect(response.status).toBe(502);
      expect(response.body.toString()).toContain('Wrong username or password');
      expect(stack.emulator.requests.filter((request) => request.endpoint === 'auth')).toHaveLength(1);
      expect(fn.output()).not.toContain('wrong-password');
    } finally {
      await fn.stop();
    }
  });

  it('refuses a CM whose certificate the configured CA does not vouch for, and says so', async () => {
    const env = publisherEnv(stack.emulator, stack.backend, { CIPHERTRUST_CA_FILE: '' });
    const fn = await startFunction({ host: 'lean', target: 'key-rotated', env });
    await waitForFirstCycle(fn.url);
    try {
      const response = await rawRequest(fn.url, '/', { method: 'POST', headers: pingHeaders() });
      expect(response.status).toBe(502);
      expect((JSON.parse(response.body.toString()) as { message: string }).message).toMatch(/cannot reach CipherTrust Manager: .*(CERT|SELF_SIGNED|UNABLE_TO_VERIFY)/);
    } finally {
      await fn.stop();
    }
  });

  it('serves the same function under functions-framework, PingSource without a body included', async () => {
    const fn = await startFunction({ host: 'functions-framework', target: 'key-rotated', env: stack.env });
    await waitForFirstCycle(fn.url);
    try {
      const response = await rawRequest(fn.url, '/', { method: 'POST', headers: pingHeaders() });
      expect(response.status).toBe(200);
      const structured = HTTP.structured(new CloudEvent({ id: 'ff-1', source: '/s', type: ROTATED }));
      const second = await rawRequest(fn.url, '/', { method: 'POST', headers: structured.headers as Record<string, string>, body: structured.body as string });
      expect(second.status).toBe(200);
      expect((await rawRequest(fn.url, '/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400);
    } finally {
      await fn.stop();
    }
  });
});

function pingHeaders(): Record<string, string> {
  return { 'ce-specversion': '1.0', 'ce-id': `tick-${Math.random()}`, 'ce-source': '/apis/v1/namespaces/jwks/pingsources/hourly', 'ce-type': 'dev.knative.sources.ping' };
}

async function fetchToken(stack: PublisherStack): Promise<{ jwt: string; refresh_token: string }> {
  const { call } = await import('../emulator/support.js');
  const response = await call(stack.emulator, 'POST', '/api/v1/auth/tokens', { body: { grant_type: 'password', username: 'admin', password: 'admin' } });
  return response.json as { jwt: string; refresh_token: string };
}
