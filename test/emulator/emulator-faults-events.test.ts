import { createPublicKey } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { MALFORMED_PEM } from '../../emulator/index.js';
import type { CmKeyResource } from '../../emulator/index.js';
import { capturingLogger } from '../support/capture.js';
import { ManualClock, call, eventually, login, startEventSink, startTestEmulator, type EventSink, type TestEmulator } from './support.js';

const KEYS = '/api/v1/vault/keys2';

describe('faults', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  let token: string;
  let key: CmKeyResource;
  beforeAll(async () => {
    emulator = await startTestEmulator({ now: clock.now });
    token = await login(emulator);
    key = emulator.keys.create({ name: 'faulty', algorithm: 'rsa', size: 2048 });
  });
  afterAll(() => emulator.stop());
  afterEach(() => {
    emulator.faults.clear();
    emulator.clearRequests();
  });

  test('latency is added to every API response', async () => {
    emulator.faults.setLatency(300);
    const started = Date.now();
    const response = await call(emulator, 'GET', `${KEYS}/${key.id}`, { token });
    // A lower bound only: a delay cannot be shorter than the timer that produces it.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(response.status).toBe(200);
    emulator.faults.setLatency(0);
    expect((await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).status).toBe(200);
  });

  test('failNext fails only the matching endpoint, count times, with a CM body', async () => {
    emulator.faults.failNext({ endpoint: 'list', status: 503, count: 2 });
    expect((await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).status).toBe(200);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const failed = await call(emulator, 'GET', KEYS, { token });
      expect(failed.status).toBe(503);
      expect(failed.json).toMatchObject({ code: expect.any(Number) as unknown, codeDesc: expect.stringMatching(/^NCERR/) as unknown, message: expect.any(String) as unknown });
    }
    expect((await call(emulator, 'GET', KEYS, { token })).status).toBe(200);

    emulator.faults.failNext({ status: 500 });
    expect((await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { username: 'admin', password: 'admin' } })).status).toBe(500);
    expect((await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { username: 'admin', password: 'admin' } })).status).toBe(200);
  });

  test('hangNext accepts a request and never answers; the client times out and the next call works', async () => {
    emulator.faults.hangNext({ endpoint: 'get' });
    await expect(call(emulator, 'GET', KEYS, { token })).resolves.toMatchObject({ status: 200 });
    await expect(call(emulator, 'GET', `${KEYS}/${key.id}`, { token, timeoutMs: 500 })).rejects.toThrow('client timeout');
    expect((await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).status).toBe(200);
    expect(emulator.requests.map((request) => [request.endpoint, request.status])).toEqual([
      ['list', 200],
      ['get', 0],
      ['get', 200],
    ]);
  });

  test('malformPublicKey breaks one key until the faults are cleared', async () => {
    const other = emulator.keys.create({ name: 'healthy', algorithm: 'ec' });
    emulator.faults.malformPublicKey(key.id);
    const broken = (await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).json as CmKeyResource;
    expect(broken.publickey).toBe(MALFORMED_PEM);
    expect(() => createPublicKey(broken.publickey!)).toThrow();
    expect(createPublicKey((await call(emulator, 'GET', `${KEYS}/${other.id}`, { token })).json.publickey as string).asymmetricKeyType).toBe('ec');
    emulator.faults.clear();
    const restored = (await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).json as CmKeyResource;
    expect(restored.publickey).toBe(key.publickey);
    expect(() => emulator.faults.malformPublicKey(emulator.keys.create({ name: 'sym', algorithm: 'aes' }).id)).toThrow();
  });

  test('setTokenDuration shortens new tokens; clear restores the default', async () => {
    emulator.faults.setTokenDuration(1);
    const response = await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { username: 'admin', password: 'admin' } });
    expect(response.json.duration).toBe(1);
    expect((await call(emulator, 'GET', KEYS, { token: response.json.jwt as string })).status).toBe(200);
    clock.advance(1);
    const expired = await call(emulator, 'GET', KEYS, { token: response.json.jwt as string });
    expect(expired.status).toBe(401);
    expect(expired.json.message).toBe('Token is expired');
    emulator.faults.clear();
    expect((await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { username: 'admin', password: 'admin' } })).json.duration).toBe(300);
    token = await login(emulator);
  });

  test('the fault endpoint drives the same faults over HTTP and needs a token', async () => {
    const faults = '/emulator/v1/faults';
    expect((await call(emulator, 'POST', faults, { body: { failNext: { status: 502 } } })).status).toBe(401);
    const armed = await call(emulator, 'POST', faults, { token, body: { failNext: { endpoint: 'get', status: 502, count: 1 }, latencyMs: 0, malformPublicKey: key.id } });
    expect(armed.status).toBe(200);
    expect(armed.json).toMatchObject({ latencyMs: 0, pending: [{ kind: 'fail', endpoint: 'get', status: 502, count: 1 }], malformedPublicKeys: [key.id] });
    expect((await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).status).toBe(502);
    expect((await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).json.publickey).toBe(MALFORMED_PEM);

    const invalid = await call(emulator, 'POST', faults, { token, body: { failNext: { status: 200 }, latencyMs: 50 } });
    expect(invalid.status).toBe(400);
    expect((await call(emulator, 'GET', faults, { token })).json.latencyMs).toBe(0);

    await call(emulator, 'POST', faults, { token, body: { hangNext: { endpoint: 'list' } } });
    const cleared = await call(emulator, 'DELETE', faults, { token });
    expect(cleared.json).toEqual({
      latencyMs: 0,
      pending: [],
      malformedPublicKeys: [],
      forcedStates: [],
      stateSpellings: {},
      listingShape: { emptyResources: 'null', queryMessages: true, ignoredParameters: [] },
    });
    expect((await call(emulator, 'GET', KEYS, { token })).status).toBe(200);
    expect((await call(emulator, 'GET', `${KEYS}/${key.id}`, { token })).json.publickey).toBe(key.publickey);

    const revoke = await call(emulator, 'POST', faults, { token, body: { revokeAllTokens: true, tokenDurationSeconds: 42 } });
    expect(revoke.status).toBe(200);
    expect((await call(emulator, 'GET', KEYS, { token })).status).toBe(401);
    const fresh = await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { username: 'admin', password: 'admin' } });
    expect(fresh.json.duration).toBe(42);
    token = fresh.json.jwt as string;
  });

  test('requests are recorded in order with endpoint, status, query and grant type', async () => {
    await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { grant_type: 'password', username: 'admin', password: 'wrong' } });
    await call(emulator, 'GET', `${KEYS}?labels=jwks%3Dpublish&limit=5`, { token });
    await call(emulator, 'GET', `${KEYS}/${key.id}`, { token });
    await call(emulator, 'POST', `${KEYS}/${key.id}/versions`, { token });
    await call(emulator, 'GET', '/nowhere', { token });
    expect(emulator.requests).toEqual([
      { method: 'POST', path: '/api/v1/auth/tokens', query: {}, status: 401, endpoint: 'auth', grantType: 'password' },
      { method: 'GET', path: KEYS, query: { labels: 'jwks=publish', limit: '5' }, status: 200, endpoint: 'list' },
      { method: 'GET', path: `${KEYS}/${key.id}`, query: {}, status: 200, endpoint: 'get' },
      { method: 'POST', path: `${KEYS}/${key.id}/versions`, query: {}, status: 201, endpoint: 'version' },
      { method: 'GET', path: '/nowhere', query: {}, status: 404, endpoint: 'other' },
    ]);
    emulator.clearRequests();
    expect(emulator.requests).toHaveLength(0);
  });
});

describe('close', () => {
  test('close() ends hung requests and open connections promptly', async () => {
    const emulator = await startTestEmulator();
    const token = await login(emulator);
    emulator.faults.hangNext({});
    // No client timeout: only the server closing can end this request.
    const hung = expect(call(emulator, 'GET', KEYS, { token })).rejects.toThrow(/socket hang up|ECONNRESET/);
    await eventually(() => emulator.requests.some((request) => request.status === 0));
    await emulator.stop();
    await hung;
  });
});

describe('CloudEvents', () => {
  let emulator: TestEmulator;
  let sink: EventSink;
  let token: string;
  beforeAll(async () => {
    sink = await startEventSink();
    emulator = await startTestEmulator({ eventSink: sink.url });
    token = await login(emulator);
  });
  afterAll(async () => {
    await emulator.stop();
    await sink.close();
  });
  beforeEach(() => {
    sink.events.length = 0;
    sink.status = 202;
    emulator.setEventSink(sink.url);
  });

  test('each REST operation posts a binary-mode CloudEvent describing the key', async () => {
    const created = (await call(emulator, 'POST', KEYS, { token, body: { name: 'evented', algorithm: 'ec', labels: { jwks: 'publish' } } })).json as CmKeyResource;
    const rotated = (await call(emulator, 'POST', `${KEYS}/${created.id}/versions`, { token })).json as CmKeyResource;
    await call(emulator, 'POST', `${KEYS}/${created.id}/revoke`, { token, body: { reason: 'Superseded' } });
    await call(emulator, 'POST', `${KEYS}/${created.id}/reactivate`, { token, body: { reason: 'DeactivatedToActive' } });
    await call(emulator, 'PATCH', `${KEYS}/${created.id}`, { token, body: { deactivationDate: '2099-01-01T00:00:00Z' } });
    await call(emulator, 'POST', `${KEYS}/${rotated.id}/revoke`, { token, body: { reason: 'KeyCompromise' } });
    await call(emulator, 'POST', `${KEYS}/${rotated.id}/destroy`, { token });

    const events = await sink.waitFor(7);
    expect(new Set(events.map((event) => event.id)).size).toBe(7);
    for (const event of events) {
      expect(event).toMatchObject({ specversion: '1.0', source: '/ciphertrust-emulator/vault/keys2', datacontenttype: 'application/json' });
      expect(event.time).toMatch(/Z$/);
    }
    const summary = events.map((event) => [event.type, event.subject, event.data]);
    expect(summary).toEqual(
      expect.arrayContaining([
        ['com.thalesgroup.ciphertrust.key.created', created.id, { id: created.id, name: 'evented', version: 0, state: 'Active' }],
        ['com.thalesgroup.ciphertrust.key.rotated', rotated.id, { id: rotated.id, name: 'evented', version: 1, state: 'Active' }],
        ['com.thalesgroup.ciphertrust.key.state-changed', created.id, { id: created.id, name: 'evented', version: 0, state: 'Deactivated' }],
        ['com.thalesgroup.ciphertrust.key.state-changed', created.id, { id: created.id, name: 'evented', version: 0, state: 'Active' }],
        ['com.thalesgroup.ciphertrust.key.state-changed', rotated.id, { id: rotated.id, name: 'evented', version: 1, state: 'Compromised' }],
        ['com.thalesgroup.ciphertrust.key.destroyed', rotated.id, { id: rotated.id, name: 'evented', version: 1, state: 'Destroyed Compromised' }],
      ]) as unknown,
    );
    expect(summary.filter(([type]) => type === 'com.thalesgroup.ciphertrust.key.state-changed')).toHaveLength(4);
  });

  test('programmatic operations post events; test backdoors and reads do not', async () => {
    const key = emulator.keys.create({ name: 'prog-evented', algorithm: 'aes' });
    emulator.keys.setState(key.id, 'Deactivated');
    emulator.keys.setPublicKeyPem(key.id, 'x');
    emulator.keys.get(key.id);
    await call(emulator, 'GET', KEYS, { token });
    emulator.keys.destroy(key.id);
    // A stray event from the backdoors would have been sent before this marker's.
    const marker = emulator.keys.create({ name: 'marker-1', algorithm: 'aes' });
    await sink.waitFor(3);
    const summary = sink.events.map((event) => [event.type, event.subject, event.data]);
    expect(summary).toHaveLength(3);
    expect(summary).toEqual(
      expect.arrayContaining([
        ['com.thalesgroup.ciphertrust.key.created', key.id, { id: key.id, name: 'prog-evented', version: 0, state: 'Active' }],
        ['com.thalesgroup.ciphertrust.key.destroyed', key.id, { id: key.id, name: 'prog-evented', version: 0, state: 'Destroyed' }],
        ['com.thalesgroup.ciphertrust.key.created', marker.id, expect.anything()],
      ]) as unknown,
    );
  });

  test('setEventSink(undefined) stops deliveries', async () => {
    emulator.setEventSink(undefined);
    emulator.keys.create({ name: 'silent', algorithm: 'aes' });
    emulator.setEventSink(sink.url);
    emulator.keys.create({ name: 'loud', algorithm: 'aes' });
    await sink.waitFor(1);
    emulator.keys.create({ name: 'marker-2', algorithm: 'aes' });
    await sink.waitFor(2);
    expect(sink.events.map((event) => (event.data as { name: string }).name).sort()).toEqual(['loud', 'marker-2']);
  });
});

describe('a failing event sink', () => {
  test('never breaks the API call, and is logged', async () => {
    const closedPort = await new Promise<number>((done) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => done(typeof address === 'object' && address !== null ? address.port : 0));
      });
    });
    const capture = capturingLogger('ciphertrust-emulator');
    const emulator = await startTestEmulator({ eventSink: `http://127.0.0.1:${closedPort}/events`, logger: capture.logger });
    const refusing = await startEventSink();
    refusing.status = 500;
    try {
      const token = await login(emulator);
      const created = await call(emulator, 'POST', KEYS, { token, body: { name: 'unheard', algorithm: 'aes' } });
      expect(created.status).toBe(201);
      await eventually(() => capture.lines().some((line) => line.event === 'event_delivery_failed'));

      emulator.setEventSink(refusing.url);
      const revoked = await call(emulator, 'POST', `${KEYS}/${created.json.id as string}/revoke`, { token, body: { reason: 'Unspecified' } });
      expect(revoked.status).toBe(200);
      await eventually(() => capture.lines().some((line) => line.event === 'event_delivery_failed' && line.status === 500));
      expect(refusing.events).toHaveLength(1);
      expect(capture.text()).not.toContain(token);
    } finally {
      await emulator.stop();
      await refusing.close();
    }
  });
});

describe('answers that are not JSON, cut off or endless; request hooks; an outage', () => {
  let emulator: TestEmulator;
  let token: string;
  let key: CmKeyResource;
  beforeAll(async () => {
    emulator = await startTestEmulator();
    token = await login(emulator);
    key = emulator.keys.create({ name: 'answered', algorithm: 'ec' });
  });
  afterAll(() => emulator.stop());
  afterEach(() => {
    emulator.faults.clear();
    emulator.clearRequests();
  });

  /** The raw answer: status, headers and body as received, or how the connection ended. */
  function rawGet(path: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; error?: string }> {
    const { hostname, port } = new URL(emulator.url);
    return new Promise((done, fail) => {
      const req = httpsRequest({ hostname, port, path, headers: { Authorization: `Bearer ${token}` }, ca: emulator.caPem, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (error) => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: error.message }));
        res.on('aborted', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: 'aborted' }));
      });
      req.on('error', fail);
      req.end();
    });
  }

  test('malformNext keeps the status and the look of JSON, but the body does not parse', async () => {
    emulator.faults.malformNext({ endpoint: 'get' });
    const broken = await rawGet(`${KEYS}/${key.id}`);
    expect(broken.status).toBe(200);
    expect(broken.headers['content-type']).toBe('application/json');
    expect(broken.body.toString()).toMatch(/^\{id:"/);
    expect(() => JSON.parse(broken.body.toString()) as unknown).toThrow(SyntaxError);
    expect(JSON.parse((await rawGet(`${KEYS}/${key.id}`)).body.toString())).toMatchObject({ id: key.id });
  });

  test('truncateNext announces the whole length, sends half, and drops the connection', async () => {
    emulator.faults.truncateNext({ endpoint: 'list' });
    const cut = await rawGet(KEYS);
    expect(cut.status).toBe(200);
    expect(cut.error).toBeDefined();
    expect(cut.body.length).toBe(Math.floor(Number(cut.headers['content-length']) / 2));
    expect((await rawGet(KEYS)).error).toBeUndefined();
  });

  test('oversizeNext streams a listing until the client hangs up, recording what it wrote', async () => {
    emulator.faults.oversizeNext({ endpoint: 'list', bytes: 200_000 });
    const whole = await rawGet(KEYS);
    // Reaching its limit, the listing ends as valid JSON.
    expect(whole.body.length).toBeGreaterThanOrEqual(200_000);
    expect((JSON.parse(whole.body.toString()) as { resources: unknown[] }).resources.length).toBeGreaterThan(1000);

    emulator.clearRequests();
    emulator.faults.oversizeNext({ endpoint: 'list' });
    const { hostname, port } = new URL(emulator.url);
    let received = 0;
    await new Promise<void>((done, fail) => {
      const req = httpsRequest({ hostname, port, path: KEYS, headers: { Authorization: `Bearer ${token}` }, ca: emulator.caPem, agent: false }, (res) => {
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > 1024 * 1024) req.destroy();
        });
        res.on('close', () => done());
      });
      req.on('error', (error) => (received > 1024 * 1024 ? done() : fail(error)));
      req.end();
    });
    await eventually(() => emulator.requests[0]?.bytesSent !== undefined);
    // What the sockets held is all that was written past the hang-up, not the default 1 GiB.
    expect(emulator.requests[0]).toMatchObject({ endpoint: 'list', status: 200 });
    expect(emulator.requests[0]!.bytesSent).toBeLessThan(64 * 1024 * 1024);
  });

  test('the new faults are armed over HTTP too', async () => {
    const armed = await call(emulator, 'POST', '/emulator/v1/faults', {
      token,
      body: { malformNext: { endpoint: 'get' }, truncateNext: { endpoint: 'list', count: 2 }, oversizeNext: { endpoint: 'get', bytes: 4096 } },
    });
    expect(armed.json.pending).toEqual([
      { kind: 'malform', endpoint: 'get', count: 1 },
      { kind: 'truncate', endpoint: 'list', count: 2 },
      { kind: 'oversize', endpoint: 'get', bytes: 4096, count: 1 },
    ]);
    expect((await call(emulator, 'POST', '/emulator/v1/faults', { token, body: { oversizeNext: { bytes: 0 } } })).status).toBe(400);
  });

  test('onRequest hooks run before each API request, before its token is checked, until removed or cleared', async () => {
    const seen: string[] = [];
    const remove = emulator.faults.onRequest((request) => seen.push(`${request.endpoint} ${request.query.skip ?? ''}`));
    emulator.faults.onRequest((request) => {
      // A key appears between two pages of a listing.
      if (request.endpoint === 'list' && request.query.skip === '1') emulator.keys.create({ name: `between-pages-${seen.length}`, algorithm: 'ec' });
    });
    const first = await call(emulator, 'GET', `${KEYS}?skip=0&limit=1`, { token });
    const second = await call(emulator, 'GET', `${KEYS}?skip=1&limit=1`, { token });
    expect(second.json.total).toBe((first.json.total as number) + 1);
    await call(emulator, 'GET', KEYS);
    await call(emulator, 'GET', '/emulator/v1/faults', { token });
    expect(seen).toEqual(['list 0', 'list 1', 'list ']);
    remove();
    emulator.faults.clear();
    await call(emulator, 'GET', `${KEYS}?skip=1&limit=1`, { token });
    expect(seen).toHaveLength(3);
    expect(emulator.keys.list().filter((candidate) => candidate.name.startsWith('between-pages-'))).toHaveLength(1);
  });

  test('down() refuses connections and keeps the keys; up() listens again on the same port', async () => {
    await emulator.down();
    await expect(call(emulator, 'GET', KEYS, { token })).rejects.toThrow(/ECONNREFUSED/);
    await emulator.up();
    const listed = await call(emulator, 'GET', KEYS, { token });
    expect(listed.status).toBe(200);
    expect((listed.json.resources as { id: string }[]).map((resource) => resource.id)).toContain(key.id);
  });

  test('publicKeyOf with objectType Private Key is a second key pair object holding the same pair', () => {
    const twin = emulator.keys.create({ name: 'imported-twice', algorithm: 'ec', objectType: 'Private Key', publicKeyOf: key.id, labels: { jwks: 'publish' } });
    expect(twin).toMatchObject({ objectType: 'Private Key', algorithm: key.algorithm, curveid: key.curveid, publickey: key.publickey, labels: { jwks: 'publish' } });
    expect(twin.id).not.toBe(key.id);
  });
});
