/**
 * The HTTP contract of jwks-get and jwk-get, against the real functions in their own processes on
 * loopback, for both storage backends and both hosts (the lean node:http host the image runs, and
 * functions-framework, which the functions are written for).
 */
import { createHash } from 'node:crypto';
import { KEY_SET_OBJECT, keyObjectName } from '../../shared/store/store.js';
import { openBackend, publish, type BackendName, type TestBackend } from '../support/backends.js';
import { eventually, metricValue, rawRequest, type RawResponse } from '../support/http.js';
import { ecKey, rsaKey, type TestKey } from '../support/keys.js';
import { startFunction, type HostKind, type RunningFunction } from '../support/processes.js';

const combinations: [BackendName, HostKind][] = [
  ['file', 'lean'],
  ['s3', 'lean'],
  ['file', 'functions-framework'],
  ['s3', 'functions-framework'],
];

function etagOf(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('base64url')}"`;
}

async function readiness(fn: RunningFunction): Promise<{ status: string; problem: { reason: string } | null }> {
  return JSON.parse((await rawRequest(fn.url, '/readyz')).body.toString()) as { status: string; problem: { reason: string } | null };
}

function jsonError(response: RawResponse): { error: string; message: string } {
  expect(response.headers['content-type']).toBe('application/json');
  const body = JSON.parse(response.body.toString()) as { error: string; message: string };
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  return body;
}

describe.each(combinations)('%s store, %s host', (backendName, host) => {
  let backend: TestBackend;
  let jwks: RunningFunction;
  let jwk: RunningFunction;
  let keys: TestKey[];
  let setBytes: Buffer;

  beforeAll(async () => {
    backend = await openBackend(backendName);
    keys = await Promise.all([rsaKey('sig'), ecKey('P-256'), rsaKey('enc')]);
    setBytes = await publish(backend.store, keys.map((key) => key.jwk));
    const env = { ...backend.env, JWKS_REVALIDATE_MS: '100' };
    [jwks, jwk] = await Promise.all([
      startFunction({ host, target: 'jwks-get', env, waitForReady: true }),
      startFunction({ host, target: 'jwk-get', env, waitForReady: true }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([jwks?.stop(), jwk?.stop()]);
    await backend?.close();
  });

  describe('GET /jwks', () => {
    it('answers 200 with the stored bytes and the caching, CORS and safety headers', async () => {
      const response = await rawRequest(jwks.url, '/jwks', { headers: { Origin: 'https://partner.example' } });
      expect(response.status).toBe(200);
      expect(response.body.equals(setBytes)).toBe(true);
      expect(response.headers).toMatchObject({
        'content-type': 'application/jwk-set+json',
        etag: etagOf(setBytes),
        'cache-control': expect.stringMatching(/^public, max-age=300, stale-while-revalidate=\d+, stale-if-error=\d+$/) as unknown,
        'access-control-allow-origin': '*',
        'x-content-type-options': 'nosniff',
        vary: 'Accept',
        'content-length': String(setBytes.length),
      });
      expect(response.headers['access-control-allow-credentials']).toBeUndefined();
      expect(Number.isNaN(Date.parse(String(response.headers['last-modified'])))).toBe(false);
    });

    it('sends the same ETag from every replica holding the same bytes', async () => {
      const other = await startFunction({ host, target: 'jwks-get', env: backend.env, waitForReady: true });
      try {
        const [a, b] = await Promise.all([rawRequest(jwks.url, '/jwks'), rawRequest(other.url, '/jwks')]);
        expect(a.headers.etag).toBe(b.headers.etag);
        expect(a.headers['last-modified']).toBe(b.headers['last-modified']);
      } finally {
        await other.stop();
      }
    });

    it.each([
      ['application/json', 'application/json'],
      ['application/json, application/jwk-set+json', 'application/jwk-set+json'],
      ['text/html', 'application/jwk-set+json'],
      ['image/png;q=1', 'application/jwk-set+json'],
    ])('answers Accept: %s with %s, never 406', async (accept, type) => {
      const response = await rawRequest(jwks.url, '/jwks', { headers: { Accept: accept } });
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe(type);
      expect(response.body.equals(setBytes)).toBe(true);
    });

    it('answers 304 to a matching If-None-Match, weak or in a list, and 200 otherwise', async () => {
      const etag = etagOf(setBytes);
      for (const value of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
        const response = await rawRequest(jwks.url, '/jwks', { headers: { 'If-None-Match': value } });
        expect(response.status).toBe(304);
        expect(response.body.length).toBe(0);
        expect(response.headers.etag).toBe(etag);
        expect(response.headers['cache-control']).toMatch(/^public, max-age=300/);
      }
      expect((await rawRequest(jwks.url, '/jwks', { headers: { 'If-None-Match': '"stale"' } })).status).toBe(200);
    });

    it('answers 304 to If-Modified-Since at or after Last-Modified, unless If-None-Match disagrees', async () => {
      const { headers } = await rawRequest(jwks.url, '/jwks');
      const lastModified = String(headers['last-modified']);
      expect((await rawRequest(jwks.url, '/jwks', { headers: { 'If-Modified-Since': lastModified } })).status).toBe(304);
      const before = new Date(Date.parse(lastModified) - 60_000).toUTCString();
      expect((await rawRequest(jwks.url, '/jwks', { headers: { 'If-Modified-Since': before } })).status).toBe(200);
      expect((await rawRequest(jwks.url, '/jwks', { headers: { 'If-Modified-Since': 'yesterday' } })).status).toBe(200);
      const both = { 'If-Modified-Since': lastModified, 'If-None-Match': '"other"' };
      expect((await rawRequest(jwks.url, '/jwks', { headers: both })).status).toBe(200);
    });

    it('answers HEAD with the GET headers and no body', async () => {
      const response = await rawRequest(jwks.url, '/jwks', { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.body.length).toBe(0);
      expect(response.headers['content-length']).toBe(String(setBytes.length));
      expect(response.headers.etag).toBe(etagOf(setBytes));
    });

    it.each(['POST', 'PUT', 'DELETE', 'PATCH'])('answers %s with 405 and Allow', async (method) => {
      const response = await rawRequest(jwks.url, '/jwks', { method });
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD, OPTIONS');
      expect(jsonError(response).error).toBe('method_not_allowed');
    });

    it('answers a CORS preflight', async () => {
      const response = await rawRequest(jwks.url, '/jwks', {
        method: 'OPTIONS',
        headers: { Origin: 'https://partner.example', 'Access-Control-Request-Method': 'GET' },
      });
      expect(response.status).toBe(204);
      expect(response.headers['access-control-allow-origin']).toBe('*');
      expect(response.headers['access-control-allow-methods']).toBe('GET, HEAD, OPTIONS');
    });

    it.each(['/jwks/', '/JWKS', '/', '/jwks.json', '/.well-known/jwks.json', `/jwk/${'a'.repeat(43)}`, '/favicon.ico'])(
      'answers the unknown path %s with 404 and no redirect',
      async (path) => {
        const response = await rawRequest(jwks.url, path);
        expect(response.status).toBe(404);
        expect(response.headers.location).toBeUndefined();
        if (!(host === 'functions-framework' && path === '/favicon.ico')) expect(jsonError(response).error).toBe('not_found');
      },
    );

    it('ignores a query string', async () => {
      const response = await rawRequest(jwks.url, '/jwks?refresh=1');
      expect(response.status).toBe(200);
      expect(response.body.equals(setBytes)).toBe(true);
    });
  });

  describe('GET /jwk/{kid}', () => {
    it('answers 200 with the key from its file, as jwk+json with the caching headers', async () => {
      for (const key of keys) {
        const response = await rawRequest(jwk.url, `/jwk/${key.jwk.kid}`);
        expect(response.status).toBe(200);
        expect(JSON.parse(response.body.toString())).toEqual(key.jwk);
        const stored = await backend.store.read(keyObjectName(key.jwk.kid), { maxBytes: 65536 });
        expect(stored.kind === 'found' && stored.object.body.equals(response.body)).toBe(true);
        expect(response.headers).toMatchObject({
          'content-type': 'application/jwk+json',
          etag: etagOf(response.body),
          'access-control-allow-origin': '*',
          'x-content-type-options': 'nosniff',
          'cache-control': expect.stringMatching(/^public, max-age=300, stale-while-revalidate=\d+, stale-if-error=\d+$/) as unknown,
        });
      }
    });

    it('answers plain application/json when only that is accepted', async () => {
      const response = await rawRequest(jwk.url, `/jwk/${keys[0]!.jwk.kid}`, { headers: { Accept: 'application/json' } });
      expect(response.headers['content-type']).toBe('application/json');
    });

    it('answers 304 to its ETag and HEAD without a body', async () => {
      const path = `/jwk/${keys[1]!.jwk.kid}`;
      const first = await rawRequest(jwk.url, path);
      expect((await rawRequest(jwk.url, path, { headers: { 'If-None-Match': String(first.headers.etag) } })).status).toBe(304);
      const head = await rawRequest(jwk.url, path, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
    });

    it('answers an unknown kid with 404, a JSON error and a short max-age', async () => {
      for (const kid of ['a'.repeat(43), 'A', 'x'.repeat(128), '__proto__', 'constructor']) {
        const response = await rawRequest(jwk.url, `/jwk/${kid}`);
        expect(response.status).toBe(404);
        expect(response.headers['cache-control']).toBe('public, max-age=10');
        expect(jsonError(response).error).toBe('unknown_kid');
      }
    });

    it.each([
      '/jwk/..',
      '/jwk/../jwks.json',
      '/jwk/..%2Fjwks.json',
      '/jwk/%2e%2e',
      '/jwk/%2E%2E%2Fetc%2Fpasswd',
      '/jwk/a%2Fb',
      '/jwk/a%5Cb',
      '/jwk/a%00b',
      '/jwk/a.b',
      '/jwk/a/b',
      '/jwk/',
      `/jwk/${'x'.repeat(129)}`,
      '/jwk/%D0%BA%D0%BB%D1%8E%D1%87',
      '/jwk/a%20b',
      '/jwk/a+b',
    ])('answers the malformed kid path %s with 400', async (path) => {
      const response = await rawRequest(jwk.url, path);
      expect(response.status).toBe(400);
      expect(jsonError(response).error).toBe('invalid_kid');
    });

    it('answers a percent-encoding that does not decode with 400', async () => {
      const response = await rawRequest(jwk.url, '/jwk/%ZZ');
      expect(response.status).toBe(400);
      // functions-framework's Express router rejects it with an HTML page before the function runs;
      // the lean host, which production runs, answers with our JSON error.
      if (host === 'lean') expect(jsonError(response).error).toBe('invalid_kid');
    });

    it('answers /jwks with 404 (one resource per function) and other methods with 405', async () => {
      expect((await rawRequest(jwk.url, '/jwks')).status).toBe(404);
      const response = await rawRequest(jwk.url, `/jwk/${keys[0]!.jwk.kid}`, { method: 'DELETE' });
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD, OPTIONS');
    });
  });

  describe('probes', () => {
    it('answers /healthz, /readyz and /metrics on the same port', async () => {
      for (const fn of [jwks, jwk]) {
        expect((await rawRequest(fn.url, '/healthz')).status).toBe(200);
        const ready = await rawRequest(fn.url, '/readyz');
        expect(ready.status).toBe(200);
        expect(JSON.parse(ready.body.toString())).toMatchObject({ status: 'ok', keys: 3, etag: etagOf(setBytes), problem: null });
        const metrics = await rawRequest(fn.url, '/metrics');
        expect(metrics.status).toBe(200);
        expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
        expect(metrics.body.toString()).toMatch(/^jwks_keys_served\{function="jwks?-get"\} 3$/m);
        expect(metrics.body.toString()).toMatch(/^jwks_served_set_age_seconds\{function="jwks?-get"\} \d/m);
        expect((await rawRequest(fn.url, '/metrics', { method: 'POST' })).status).toBe(405);
      }
    });

    it('adds the process metrics (memory, CPU, event loop) shortly after start', async () => {
      for (const fn of [jwks, jwk]) {
        await eventually(async () => /^process_resident_memory_bytes \d+/m.test((await rawRequest(fn.url, '/metrics')).body.toString()));
        expect((await rawRequest(fn.url, '/metrics')).body.toString()).toMatch(/^nodejs_eventloop_lag_seconds /m);
      }
    });

    it('counts requests by route and status', async () => {
      const series = 'jwks_http_requests_total{function="jwk-get",route="jwk",status="404"}';
      const before = metricValue((await rawRequest(jwk.url, '/metrics')).body.toString(), series);
      await rawRequest(jwk.url, `/jwk/${'z'.repeat(43)}`);
      await rawRequest(jwk.url, `/jwk/${'y'.repeat(43)}`);
      const after = metricValue((await rawRequest(jwk.url, '/metrics')).body.toString(), series);
      expect(after - before).toBe(2);
    });
  });
});

describe.each(combinations)('lifecycle: %s store, %s host', (backendName, host) => {
  let backend: TestBackend;
  let jwks: RunningFunction;
  let jwk: RunningFunction;
  let first: TestKey;
  let second: TestKey;

  beforeAll(async () => {
    backend = await openBackend(backendName);
    [first, second] = await Promise.all([ecKey('P-256'), rsaKey('sig')]);
  });
  afterAll(async () => {
    await Promise.all([jwks?.stop(), jwk?.stop()]);
    await backend?.close();
  });

  it('answers 503 with Retry-After before any set exists, never an empty 200', async () => {
    const env = { ...backend.env, JWKS_REVALIDATE_MS: '100' };
    [jwks, jwk] = await Promise.all([startFunction({ host, target: 'jwks-get', env }), startFunction({ host, target: 'jwk-get', env })]);
    for (const [fn, path] of [[jwks, '/jwks'], [jwk, `/jwk/${first.jwk.kid}`]] as const) {
      const response = await rawRequest(fn.url, path);
      expect(response.status).toBe(503);
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      expect(jsonError(response).error).toBe('not_ready');
      expect((await rawRequest(fn.url, '/readyz')).status).toBe(503);
      expect((await rawRequest(fn.url, '/healthz')).status).toBe(200);
    }
  });

  it('serves a set as soon as one is published', async () => {
    const body = await publish(backend.store, [first.jwk]);
    await eventually(async () => (await rawRequest(jwks.url, '/jwks')).status === 200);
    expect((await rawRequest(jwks.url, '/jwks')).body.equals(body)).toBe(true);
    await eventually(async () => (await rawRequest(jwk.url, `/jwk/${first.jwk.kid}`)).status === 200);
  });

  it('follows a rotation: new key served, removed key gone from both functions', async () => {
    const before = await rawRequest(jwks.url, '/jwks');
    const body = await publish(backend.store, [second.jwk]);
    await backend.store.remove(keyObjectName(first.jwk.kid));
    await eventually(async () => (await rawRequest(jwks.url, '/jwks')).body.equals(body));
    const after = await rawRequest(jwks.url, '/jwks');
    expect(after.headers.etag).not.toBe(before.headers.etag);
    await eventually(async () => (await rawRequest(jwk.url, `/jwk/${second.jwk.kid}`)).status === 200);
    expect((await rawRequest(jwk.url, `/jwk/${first.jwk.kid}`)).status).toBe(404);
  });

  it('keeps the last good set when jwks.json turns corrupt, and says so in /readyz and /metrics', async () => {
    const good = await rawRequest(jwks.url, '/jwks');
    await backend.store.write(KEY_SET_OBJECT, good.body.subarray(0, good.body.length - 10));
    // Generous: on a loaded CI machine a poll cycle (1 s) and an S3 request can take several seconds.
    // On a loaded machine a slow S3 answer can show up as a timeout in between: wait for the refusal itself.
    await eventually(async () => {
      const ready = await readiness(jwks);
      return ready.status === 'degraded' && ready.problem?.reason === 'malformed_json';
    }, 15_000);
    const now = await rawRequest(jwks.url, '/jwks');
    expect(now.status).toBe(200);
    expect(now.body.equals(good.body)).toBe(true);
    const metrics = (await rawRequest(jwks.url, '/metrics')).body.toString();
    // At least once: a slow store read in between (a loaded CI machine) starts a new episode,
    // which is counted again. Counting a refusal once per episode is unit-tested (key-set-cache).
    expect(metricValue(metrics, 'jwks_set_refusals_total{function="jwks-get",reason="malformed_json"}')).toBeGreaterThanOrEqual(1);
  });

  it('never serves a stored set holding private material, and logs a security event without the secret', async () => {
    const good = await rawRequest(jwks.url, '/jwks');
    const privateD = (first.privateKey.export({ format: 'jwk' }) as { d: string }).d;
    const leaked = { keys: [{ ...second.jwk }, { ...first.jwk, d: privateD }] };
    await backend.store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify(leaked)));
    await eventually(() => Promise.resolve(jwks.output().includes('private_key_material_in_store')));
    const now = await rawRequest(jwks.url, '/jwks');
    expect(now.body.equals(good.body)).toBe(true);
    expect(now.body.toString()).not.toContain(privateD);
    expect(jwks.output()).not.toContain(privateD);
    await eventually(() => Promise.resolve(jwk.output().includes('private_key_material_in_store')));
    expect(jwk.output()).not.toContain(privateD);
  });

  it('keeps serving while the store is unreachable, and recovers', async () => {
    const body = await publish(backend.store, [second.jwk]);
    await eventually(async () => (await rawRequest(jwks.url, '/jwks')).body.equals(body));
    const restore = await makeUnreachable(backend);
    try {
      await eventually(async () => (await readiness(jwks)).status === 'degraded', 8000);
      const during = await rawRequest(jwks.url, '/jwks');
      expect(during.status).toBe(200);
      expect(during.body.equals(body)).toBe(true);
      expect((await rawRequest(jwk.url, `/jwk/${second.jwk.kid}`)).status).toBe(200);
      const metrics = (await rawRequest(jwks.url, '/metrics')).body.toString();
      const errors = ['missing', 'unavailable', 'timeout'].map((reason) => metricValue(metrics, `jwks_store_errors_total{function="jwks-get",reason="${reason}"}`));
      expect(errors.reduce((sum, value) => sum + value, 0)).toBeGreaterThan(0);
    } finally {
      await restore();
    }
    const next = await publish(backend.store, [first.jwk, second.jwk]);
    await eventually(async () => (await rawRequest(jwks.url, '/jwks')).body.equals(next), 8000);
    await eventually(async () => (await readiness(jwks)).status === 'ok');
  });

  it('causes no storage read for a flood of random unknown kids', async () => {
    const quiet = await startFunction({ host, target: 'jwk-get', env: { ...backend.env, JWKS_REVALIDATE_MS: '3600000' }, waitForReady: true });
    try {
      const readsOf = async () => {
        const text = (await rawRequest(quiet.url, '/metrics')).body.toString();
        return ['found', 'unchanged', 'missing', 'error']
          .flatMap((result) => ['set', 'key'].map((object) => `jwks_store_reads_total{function="jwk-get",object="${object}",result="${result}"}`))
          .reduce((sum, series) => sum + metricValue(text, series), 0);
      };
      const before = await readsOf();
      for (let batch = 0; batch < 20; batch++) {
        await Promise.all(
          Array.from({ length: 50 }, () => rawRequest(quiet.url, `/jwk/${createHash('sha256').update(String(Math.random())).digest('base64url')}`)),
        ).then((responses) => responses.forEach((response) => expect(response.status).toBe(404)));
      }
      expect(await readsOf()).toBe(before);
    } finally {
      await quiet.stop();
    }
  });
});

/** Takes the store away the way production loses it: the volume's directory, or the S3 server. */
async function makeUnreachable(backend: TestBackend): Promise<() => Promise<void>> {
  if (backend.directory !== undefined) {
    const { rename } = await import('node:fs/promises');
    const away = `${backend.directory}.away`;
    await rename(backend.directory, away);
    return () => rename(away, backend.directory!);
  }
  return backend.s3!.interrupt();
}
