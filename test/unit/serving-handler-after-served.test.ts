/**
 * The serving handler's afterServed hook, which the serving runtime uses to load pino once the
 * first answer carrying keys is out (issue 6): called after each 200 or 304 of /jwks or /jwk/{kid},
 * after the answer is written, and for nothing else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServingHandler, type ServedResource } from '../../shared/http/serving-handler.js';
import { ServingMetrics } from '../../shared/observability/serving-metrics.js';
import type { KeySetSnapshot } from '../../shared/serving/key-set-cache.js';
import { representationOf } from '../../shared/serving/representation.js';
import { capturingLogger } from '../support/capture.js';
import { rawRequest } from '../support/http.js';

const KID = 'k-2026-11';
const lastModified = new Date('2026-11-24T10:00:00Z');
const keyBody = Buffer.from(JSON.stringify({ kty: 'EC', crv: 'P-256', kid: KID, x: 'x', y: 'y' }));
const snapshot: KeySetSnapshot = {
  set: representationOf(Buffer.from(`{"keys":[${keyBody.toString()}]}`), lastModified),
  keys: new Map([[KID, representationOf(keyBody, lastModified)]]),
  keyCount: 1,
  version: 'v1',
  loadedAt: lastModified,
};

async function serving(resource: ServedResource, loaded: KeySetSnapshot | undefined): Promise<{ url: string; calls: string[]; server: Server }> {
  const calls: string[] = [];
  const metrics = new ServingMetrics(resource === 'set' ? 'jwks-get' : 'jwk-get', () => loaded, Date.now, { defaultMetrics: false });
  const handler = createServingHandler({
    resource,
    cache: { current: () => loaded, status: () => ({ snapshot: loaded, lastSuccessfulCheck: loaded?.loadedAt, problem: undefined }) },
    metrics,
    policy: { maxAgeSeconds: 300, staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 86_400, notFoundMaxAgeSeconds: 60 },
    retryAfterSeconds: 1,
    logger: capturingLogger().logger,
    // What the hook sees of the answer: it must already be written.
    afterServed: () => calls.push('served'),
  });
  const server = createServer((req, res) => {
    handler(req, res);
    calls.push(`answered ${res.statusCode} ${String(res.writableEnded)}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, server };
}

describe('afterServed', () => {
  const servers: Server[] = [];
  afterAll(() => Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))));

  it('follows each 200 and 304 of /jwks, once the answer is written', async () => {
    const { url, calls, server } = await serving('set', snapshot);
    servers.push(server);
    expect((await rawRequest(url, '/jwks')).status).toBe(200);
    expect((await rawRequest(url, '/jwks', { headers: { 'If-None-Match': snapshot.set.etag } })).status).toBe(304);
    expect((await rawRequest(url, '/jwks', { method: 'HEAD' })).status).toBe(200);
    expect(calls).toEqual(['served', 'answered 200 true', 'served', 'answered 304 true', 'served', 'answered 200 true']);
  });

  it('follows a served key of /jwk/{kid}, and neither an unknown kid nor an invalid one', async () => {
    const { url, calls, server } = await serving('key', snapshot);
    servers.push(server);
    expect((await rawRequest(url, `/jwk/${KID}`)).status).toBe(200);
    expect((await rawRequest(url, '/jwk/unknown-kid')).status).toBe(404);
    expect((await rawRequest(url, '/jwk/not%20valid')).status).toBe(400);
    expect(calls).toEqual(['served', 'answered 200 true', 'answered 404 true', 'answered 400 true']);
  });

  // Not about afterServed, but served through the same handler: the body goes out as a latin1
  // string (issue 16), which must carry every byte value as stored, UTF-8 sequences included.
  it('sends the stored bytes as they are, every byte value and UTF-8 included', async () => {
    const bytes = Buffer.concat([Buffer.from('{"keys":[],"note":"é € 🔑"}'), Buffer.from(Array.from({ length: 256 }, (_, value) => value))]);
    const odd: KeySetSnapshot = { ...snapshot, set: representationOf(bytes, lastModified) };
    const { url, server } = await serving('set', odd);
    servers.push(server);
    const answer = await rawRequest(url, '/jwks');
    expect(answer.headers['content-length']).toBe(String(bytes.length));
    expect(answer.body.equals(bytes)).toBe(true);
  });

  it('does not follow probes, metrics, other paths or methods, nor a 503 before a set is loaded', async () => {
    const ready = await serving('set', snapshot);
    const empty = await serving('set', undefined);
    servers.push(ready.server, empty.server);
    for (const path of ['/healthz', '/readyz', '/metrics', '/elsewhere']) await rawRequest(ready.url, path);
    expect((await rawRequest(ready.url, '/jwks', { method: 'OPTIONS' })).status).toBe(204);
    expect((await rawRequest(ready.url, '/jwks', { method: 'POST' })).status).toBe(405);
    expect((await rawRequest(empty.url, '/jwks')).status).toBe(503);
    expect([...ready.calls, ...empty.calls].filter((call) => call === 'served')).toEqual([]);
  });
});
