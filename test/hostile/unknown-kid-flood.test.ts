/**
 * Issue 7: 10,000 requests for random, well-formed, unknown kids cause no storage read, and real
 * requests sent all through the flood are answered as always (200, the published key's bytes).
 * Against jwk-get in its own process (lean host, file store: reads counted by its /metrics), and in
 * process on both stores (every call to the store recorded, whoever makes it). Revalidation is
 * set to an hour, so any read during the flood would be one the requests caused.
 *
 * Timings are not asserted (the machine is shared); the latency of the real requests with and
 * without the flood is measured for the report only.
 */
import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { keyObjectName } from '../../shared/store/store.js';
import { openBackend, publish, type BackendName, type TestBackend } from '../support/backends.js';
import { metricValue, rawRequest } from '../support/http.js';
import { startInProcessServing, type InProcessServing } from '../support/in-process-serving.js';
import { ecKey, rsaKey } from '../support/keys.js';
import { startFunction, type RunningFunction } from '../support/processes.js';

const FLOOD = 10_000;
const CONCURRENCY = 32;
const HOUR_MS = '3600000';
/** Room for 10,000 requests on a busy 2-core machine (about 5 s when idle): a guard, not a target. */
const FLOOD_TIMEOUT_MS = 120_000;

interface Answer {
  readonly status: number;
  readonly body: Buffer;
  readonly ms: number;
}

/** A GET on a kept-alive connection (a flood opens no new connection per request). */
function get(agent: Agent, baseUrl: string, path: string): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  const started = performance.now();
  return new Promise((done, fail) => {
    const req = request({ hostname, port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - started }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

interface FloodResult {
  readonly unknownStatuses: ReadonlyMap<number, number>;
  /** Real requests sent while the flood ran, with their answers. */
  readonly real: readonly (Answer & { kid: string })[];
}

/** Sends `kids` with CONCURRENCY connections while one more sends real requests until the flood ends. */
async function flood(url: string, kids: readonly string[], published: readonly string[]): Promise<FloodResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY + 1 });
  const unknownStatuses = new Map<number, number>();
  const real: (Answer & { kid: string })[] = [];
  let next = 0;
  let flooding = true;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < kids.length; index = next++) {
      const { status } = await get(agent, url, `/jwk/${kids[index]}`);
      unknownStatuses.set(status, (unknownStatuses.get(status) ?? 0) + 1);
    }
  };
  const realClient = async (): Promise<void> => {
    for (let index = 0; flooding; index++) {
      const kid = published[index % published.length]!;
      real.push({ kid, ...(await get(agent, url, `/jwk/${kid}`)) });
    }
  };
  try {
    const realDone = realClient();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    flooding = false;
    await realDone;
  } finally {
    agent.destroy();
  }
  return { unknownStatuses, real };
}

/** Real requests alone, sequentially: the baseline the flood is compared with. */
async function quiet(url: string, published: readonly string[], count: number): Promise<(Answer & { kid: string })[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const answers: (Answer & { kid: string })[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const kid = published[index % published.length]!;
      answers.push({ kid, ...(await get(agent, url, `/jwk/${kid}`)) });
    }
  } finally {
    agent.destroy();
  }
  return answers;
}

/** Random kids in the kid grammar (base64url, 1 to 128 characters) that no published key has. */
function unknownKids(published: readonly string[], seed: number): string[] {
  const known = new Set(published);
  return fc.sample(fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/).filter((kid) => !known.has(kid)), { numRuns: FLOOD, seed });
}

async function publishedKeys(backend: TestBackend): Promise<Map<string, Buffer>> {
  const keys = await Promise.all([ecKey('P-256'), rsaKey('sig'), ecKey('P-384')]);
  await publish(backend.store, keys.map((key) => key.jwk));
  const files = new Map<string, Buffer>();
  for (const key of keys) {
    const read = await backend.store.read(keyObjectName(key.jwk.kid), { maxBytes: 65_536 });
    if (read.kind !== 'found') throw new Error('published key file missing');
    files.set(key.jwk.kid, read.object.body);
  }
  return files;
}

/** Every flood request a 404, every real request its key, from before the flood to after it. */
async function expectFloodHarmless(url: string, files: ReadonlyMap<string, Buffer>, seed: number): Promise<void> {
  const published = [...files.keys()];
  const before = await quiet(url, published, 300);
  const { unknownStatuses, real } = await flood(url, unknownKids(published, seed), published);
  const after = await quiet(url, published, 300);
  expect(Object.fromEntries(unknownStatuses)).toEqual({ 404: FLOOD });
  // The real client ran all through the flood, not only after it.
  expect(real.length).toBeGreaterThan(10);
  for (const answer of [...before, ...real, ...after]) {
    expect(answer.status).toBe(200);
    expect(answer.body.equals(files.get(answer.kid)!)).toBe(true);
  }
}

function storeReads(metricsText: string): number {
  return ['found', 'unchanged', 'missing', 'error']
    .flatMap((result) => ['set', 'key'].map((object) => `jwks_store_reads_total{function="jwk-get",object="${object}",result="${result}"}`))
    .reduce((sum, series) => sum + metricValue(metricsText, series), 0);
}

describe('10,000 requests for random unknown kids (jwk-get process, lean host, file store)', () => {
  let backend: TestBackend;
  let jwk: RunningFunction;
  let files: Map<string, Buffer>;

  beforeAll(async () => {
    backend = await openBackend('file');
    files = await publishedKeys(backend);
    jwk = await startFunction({ host: 'lean', target: 'jwk-get', env: { ...backend.env, JWKS_REVALIDATE_MS: HOUR_MS }, waitForReady: true });
  });
  afterAll(async () => {
    await jwk?.stop();
    await backend?.close();
  });

  it('cause zero storage reads, while the real requests in between all answer 200 with their key', async () => {
    const readsBefore = storeReads((await rawRequest(jwk.url, '/metrics')).body.toString());
    // The first load read the set and each key file: the counter is live.
    expect(readsBefore).toBeGreaterThanOrEqual(1 + files.size);
    await expectFloodHarmless(jwk.url, files, 7);
    expect(storeReads((await rawRequest(jwk.url, '/metrics')).body.toString())).toBe(readsBefore);
  }, FLOOD_TIMEOUT_MS);
});

describe.each<BackendName>(['file', 's3'])('10,000 requests for random unknown kids (in process, %s store, reads counted at the store)', (backendName) => {
  let backend: TestBackend;
  let serving: InProcessServing;
  let files: Map<string, Buffer>;

  beforeAll(async () => {
    backend = await openBackend(backendName);
    files = await publishedKeys(backend);
    serving = await startInProcessServing(backend.store, { ...backend.env, JWKS_REVALIDATE_MS: HOUR_MS });
  });
  afterAll(async () => {
    await serving?.stop();
    await backend?.close();
  });

  it('cause zero calls to the store, while the real requests in between all answer 200 with their key', async () => {
    const readsBefore = serving.store.reads.length;
    expect(readsBefore).toBeGreaterThan(0);
    await expectFloodHarmless(serving.keyUrl, files, backendName === 'file' ? 11 : 13);
    expect(serving.store.reads.slice(readsBefore)).toEqual([]);
    expect(serving.store.otherCalls).toEqual([]);
  }, FLOOD_TIMEOUT_MS);
});
