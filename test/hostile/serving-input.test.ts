/**
 * Issue 7, hostile input to jwks-get and jwk-get, property-based (fast-check): paths and kids
 * (percent-encoded dots and slashes, NUL, unicode, overlong, "..", backslashes, double encoding),
 * methods (odd, unknown, lowercase), headers (huge, repeated, odd If-None-Match, garbage) and
 * query strings. Whatever arrives: never a 5xx, never a crash, a 4xx is a short JSON error, a 200
 * is a published document, and nothing outside the store is ever read.
 *
 * Requests go over raw TCP sockets (node:http and fetch refuse or normalise what an attacker sends
 * as is) to the lean host in its own process on a file store, and to the same handlers in process
 * on both stores, where every name asked of the store is recorded. Canary files with private-looking
 * content sit where a path that escaped the store would land: next to the store directory, and in
 * the store under names no published key has.
 */
import { createHash, randomBytes } from 'node:crypto';
import { METHODS } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { S3KeySetStore } from '../../shared/store/s3-store.js';
import { KEY_SET_OBJECT, SOURCES_OBJECT, keyObjectName, type KeySetStore } from '../../shared/store/store.js';
import { openBackend, publish, type BackendName } from '../support/backends.js';
import { rawRequest } from '../support/http.js';
import { expectNoSecretsInLogs } from '../support/log-secrets.js';
import { startInProcessServing, type InProcessServing } from '../support/in-process-serving.js';
import { ecKey, rsaKey } from '../support/keys.js';
import { startFunction, type RunningFunction } from '../support/processes.js';
import { exchange, type WireResponse } from '../support/raw-socket.js';

/** The kid grammar (shared/jwks/kid.ts), written out again: the test must not borrow the code's. */
const VALID_KID = /^[A-Za-z0-9_-]{1,128}$/;
/** Node's limit on a request's header section (--max-http-header-size default). */
const HEADER_LIMIT = 16 * 1024;
const RUNS = 150;

/** What is published, and what must never be served. */
interface Fixture {
  readonly setBytes: Buffer;
  readonly keyFiles: ReadonlyMap<string, Buffer>;
  readonly etags: ReadonlyMap<Buffer, string>;
  /** In every canary file; no response may ever contain it. */
  readonly canary: string;
  /** A well-formed kid that is not published, though files named after it exist (canaries). */
  readonly canaryKid: string;
  /** The environment a serving function needs to read the store. */
  readonly env: Record<string, string>;
  /** The store the serving functions read. */
  readonly store: KeySetStore;
  close(): Promise<void>;
}

async function publishFixture(store: KeySetStore): Promise<Pick<Fixture, 'setBytes' | 'keyFiles' | 'etags'>> {
  const keys = await Promise.all([ecKey('P-256'), rsaKey('enc'), ecKey('P-384')]);
  const setBytes = await publish(store, keys.map((key) => key.jwk));
  const keyFiles = new Map<string, Buffer>();
  for (const key of keys) {
    const read = await store.read(keyObjectName(key.jwk.kid), { maxBytes: 65_536 });
    if (read.kind !== 'found') throw new Error('published key file missing');
    keyFiles.set(key.jwk.kid, read.object.body);
  }
  const etags = new Map([setBytes, ...keyFiles.values()].map((bytes) => [bytes, `"${createHash('sha256').update(bytes).digest('base64url')}"`]));
  return { setBytes, keyFiles, etags };
}

/** A JWK Set that looks like a leaked private key, marked with the canary. */
function canaryDocument(canary: string, kid: string): Buffer {
  return Buffer.from(JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid, x: canary, y: canary, d: canary }], note: canary }));
}

/**
 * A file store at <tmp>/store; canaries in <tmp> (jwks.json, jwk-<canaryKid>.json,
 * jwks-sources.json: where "../" lands) and in the store under names no published key has.
 */
async function fileFixture(): Promise<Fixture> {
  const parent = await mkdtemp(join(tmpdir(), 'jwks-hostile-'));
  const root = join(parent, 'store');
  await mkdir(root);
  const canary = `CANARY-PRIVATE-${randomBytes(12).toString('hex')}`;
  const canaryKid = randomBytes(32).toString('base64url');
  const document = canaryDocument(canary, canaryKid);
  for (const name of [KEY_SET_OBJECT, SOURCES_OBJECT, keyObjectName(canaryKid), 'store.json', 'secret.pem']) await writeFile(join(parent, name), document);
  for (const name of [keyObjectName(canaryKid), `.${KEY_SET_OBJECT}.tmp`, 'jwk-..json', 'notes.txt']) await writeFile(join(root, name), document);
  const store = new FileKeySetStore(root);
  return { ...(await publishFixture(store)), canary, canaryKid, store, env: { JWKS_STORE: `file://${root}` }, close: () => rm(parent, { recursive: true, force: true }) };
}

/** The scratch S3 store under partners/jwks/; canaries under partners/ and as unlisted keys. */
async function s3Fixture(): Promise<Fixture> {
  const backend = await openBackend('s3');
  const s3 = backend.s3!;
  const canary = `CANARY-PRIVATE-${randomBytes(12).toString('hex')}`;
  const canaryKid = randomBytes(32).toString('base64url');
  const outside = new S3KeySetStore({ bucket: s3.bucket, prefix: 'partners/', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, timeoutMs: 5000, maxAttempts: 1 });
  const document = canaryDocument(canary, canaryKid);
  for (const name of [KEY_SET_OBJECT, SOURCES_OBJECT, keyObjectName(canaryKid)]) await outside.write(name, document);
  outside.close();
  await backend.store.write(keyObjectName(canaryKid), document);
  return { ...(await publishFixture(backend.store)), canary, canaryKid, store: backend.store, env: backend.env, close: () => backend.close() };
}

// ---- hostile requests -----------------------------------------------------------------------

type Kind = 'path' | 'method' | 'header' | 'query';

interface HostileRequest {
  readonly kind: Kind;
  /** jwks-get ('set') or jwk-get ('key'). */
  readonly fn: 'set' | 'key';
  readonly method: string;
  readonly target: string;
  readonly version: 'HTTP/1.1' | 'HTTP/1.0';
  readonly headers: readonly (readonly [string, string])[];
  /** The same request without its query (kind 'query'): the answer must not differ. */
  readonly baseTarget?: string;
  /** Bytes of body sent after the headers. */
  readonly body?: number;
}

/** Pieces an attacker builds a kid from: traversal, encodings (single, double, overlong UTF-8), NUL, separators. */
const HOSTILE_PIECES = [
  '..', '.', '/', '\\', '%2e', '%2E', '%2e%2e', '%2f', '%2F', '%5c', '%5C', '%00', '\0', '%252e%252e%252f', '%25', '%', '%zz',
  '%c0%ae', '%c0%af', '%e0%80%ae', '..%2f', '..;/', ';', ',', '+', '%20', ' ', '\t', '%0d%0a', '\r\n', '~', '*', "'", '"', '<', '>',
  '@', ':', '=', '&', '#', '%3f', '%23', 'é', '%C3%A9', '\u202e', '%EF%BC%8F', 'ｊｗｋ', 'jwks.json', 'jwk-', '.json', 'jwks-sources',
  '..\\..\\', '/etc/passwd', 'C:', '%u002e',
];

function kidSegment(fixture: Fixture): fc.Arbitrary<string> {
  const published = [...fixture.keyFiles.keys()];
  const piece = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...HOSTILE_PIECES, fixture.canaryKid, `jwk-${fixture.canaryKid}.json`, ...published) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('..', '/', '.', '\\', '\0', fixture.canaryKid).map((text) => encodeURIComponent(encodeURIComponent(text))) },
  );
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(piece, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('')) },
    { weight: 1, arbitrary: fc.integer({ min: 129, max: 6000 }).map((length) => 'k'.repeat(length)) },
    { weight: 1, arbitrary: fc.stringMatching(VALID_KID) },
    { weight: 1, arbitrary: fc.constantFrom(...published, fixture.canaryKid, '') },
  );
}

function pathRequests(fixture: Fixture): fc.Arbitrary<HostileRequest> {
  const target = fc.oneof(
    { weight: 6, arbitrary: kidSegment(fixture).map((kid) => `/jwk/${kid}`) },
    { weight: 1, arbitrary: kidSegment(fixture).map((kid) => `http://partner.example/jwk/${kid}`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('', '/', '%2f', '/..', '/../jwks.json', '.json', '/.'), kidSegment(fixture)).map(([glue, kid]) => `/jwks${glue}${kid}`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('//', '/./', '/%2e/', '/..', '/JWK/', '/jwk%2f', '\\jwk\\'), kidSegment(fixture)).map(([prefix, kid]) => `${prefix}${kid}`) },
  );
  return fc.record({
    kind: fc.constant<Kind>('path'),
    fn: fc.constantFrom<'set' | 'key'>('key', 'key', 'set'),
    method: fc.constantFrom('GET', 'GET', 'HEAD'),
    target,
    version: fc.constant<'HTTP/1.1'>('HTTP/1.1'),
    headers: fc.constant([]),
  });
}

/** A target that names something real: the set, a published key, or a well-formed unknown kid. */
function goodTarget(fixture: Fixture): fc.Arbitrary<{ fn: 'set' | 'key'; target: string }> {
  return fc.oneof(
    fc.constant({ fn: 'set' as const, target: '/jwks' }),
    fc.constantFrom(...fixture.keyFiles.keys()).map((kid) => ({ fn: 'key' as const, target: `/jwk/${kid}` })),
    fc.stringMatching(VALID_KID).map((kid) => ({ fn: 'key' as const, target: `/jwk/${kid}` })),
  );
}

const ODD_METHODS = ['get', 'Get', 'head', 'options', 'FOO', 'BREW', 'G3T', 'GET\t', 'GETT', 'PRI', 'HTTP/1.1', '-', 'X'.repeat(64)];

function methodRequests(fixture: Fixture): fc.Arbitrary<HostileRequest> {
  return fc
    .record({
      good: goodTarget(fixture),
      method: fc.oneof(fc.constantFrom(...METHODS), fc.constantFrom(...ODD_METHODS), fc.stringMatching(/^[A-Z]{1,10}$/)),
      version: fc.constantFrom<'HTTP/1.1' | 'HTTP/1.0'>('HTTP/1.1', 'HTTP/1.0'),
      body: fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined, freq: 2 }),
    })
    .map(({ good, method, version, body }) => ({
      kind: 'method' as const,
      ...good,
      method,
      version,
      headers: body === undefined ? [] : [['Content-Length', String(body)] as const],
      body,
    }));
}

const PRINTABLE = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 200 });

function headerPairs(fixture: Fixture): fc.Arbitrary<(readonly [string, string])[]> {
  const etags = [...fixture.etags.values()];
  const validator = fc.oneof(
    fc.constantFrom('W/""', '*', '""', 'W/', ',', ', ,', '"a", *', 'W/"x", W/"y"', '"unterminated', 'W/W/""', '*, *', `"${'x'.repeat(300)}"`),
    fc.constantFrom(...etags, ...etags.map((etag) => `W/${etag}`), ...etags.map((etag) => etag.slice(1, -1))),
    fc.array(fc.oneof(fc.constantFrom(...etags), PRINTABLE), { minLength: 2, maxLength: 40 }).map((list) => list.join(', ')),
    PRINTABLE,
  );
  const date = fc.oneof(
    fc.date({ noInvalidDate: true }).map((at) => at.toUTCString()),
    fc.constantFrom('yesterday', 'Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', '0', '-1', 'Sun, 06 Nov 1994 08:49:37 GMT', ''),
    PRINTABLE,
  );
  const pair = fc.oneof(
    { weight: 3, arbitrary: validator.map((value) => ['If-None-Match', value] as const) },
    { weight: 2, arbitrary: date.map((value) => ['If-Modified-Since', value] as const) },
    { weight: 2, arbitrary: fc.oneof(PRINTABLE, fc.constantFrom('application/json;q=0', '*/*;q=abc', 'application/json, application/jwk-set+json;q=0', 'text/html', ';;;,,,', 'application/json;q=1e400')).map((value) => ['Accept', value] as const) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('Origin', 'Range', 'Cookie', 'Authorization', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Original-URL', 'X-Rewrite-URL', 'Forwarded', 'Accept-Encoding', 'Via', 'User-Agent', 'Referer', 'Cache-Control', 'Pragma', 'Host', 'Connection', 'Upgrade', 'Te', 'Trailer', 'Expect'), PRINTABLE) },
    { weight: 2, arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}$/), PRINTABLE) },
  );
  return fc.array(pair, { maxLength: 12 });
}

/** What makes Node's parser (or the host) refuse a request before the handler sees it. */
const MALFORMED = [
  ['X-Control', 'a\u0001b'],
  ['X-Nul', 'a\0b'],
  ['X-Del', 'a\u007fb'],
  ['Bad Name', 'x'],
  ['(comment)', 'x'],
  ['Content-Length', 'abc'],
  ['Content-Length', '-1'],
  ['Content-Length', '99999999999999999999999'],
  ['Transfer-Encoding', 'chunked, identity'],
  ['X-Bare-CR', 'a\rb'],
] as const;

/** The value in about one case of eight, undefined otherwise. */
function rarely<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
}

function headerRequests(fixture: Fixture): fc.Arbitrary<HostileRequest> {
  return fc
    .record({
      good: goodTarget(fixture),
      method: fc.constantFrom('GET', 'GET', 'HEAD'),
      pairs: headerPairs(fixture),
      repeated: fc.option(fc.tuple(fc.constantFrom('If-None-Match', 'Accept', 'X-Repeated', 'If-Modified-Since', 'Host'), PRINTABLE, fc.integer({ min: 2, max: 60 })), { nil: undefined, freq: 2 }),
      huge: rarely(fc.integer({ min: HEADER_LIMIT + 1, max: 40_000 })),
      malformed: rarely(fc.constantFrom(...MALFORMED)),
    })
    .map(({ good, method, pairs, repeated, huge, malformed }) => {
      const headers = [...pairs];
      if (repeated !== undefined) for (let index = 0; index < repeated[2]; index++) headers.push([repeated[0], repeated[1]]);
      if (huge !== undefined) headers.push(['X-Huge', 'h'.repeat(huge)]);
      if (malformed !== undefined) headers.push(malformed);
      return { kind: 'header' as const, ...good, method, version: 'HTTP/1.1' as const, headers };
    });
}

function queryRequests(fixture: Fixture): fc.Arbitrary<HostileRequest> {
  const query = fc.oneof(
    PRINTABLE,
    fc.constantFrom('kid=../../jwks.json', 'kid=%2e%2e%2fjwks.json', 'x=%00', '&&&', '?', '=', 'refresh=1', `kid=${fixture.canaryKid}`, '%zz', 'a=é', '\0', 'a b'),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.integer({ min: 1000, max: 8000 }).map((length) => `q=${'v'.repeat(length)}`),
  );
  const base = fc.oneof(goodTarget(fixture), kidSegment(fixture).map((kid) => ({ fn: 'key' as const, target: `/jwk/${kid.replace(/[?#\s]/g, '')}` })));
  return fc.record({ base, query, method: fc.constantFrom('GET', 'HEAD') }).map(({ base, query, method }) => ({
    kind: 'query' as const,
    fn: base.fn,
    method,
    target: `${base.target}?${query}`,
    baseTarget: base.target,
    version: 'HTTP/1.1' as const,
    headers: [],
  }));
}

function wire(request: HostileRequest, target = request.target): Buffer {
  const lines = [`${request.method} ${target} ${request.version}`, 'Host: 127.0.0.1', ...request.headers.map(([name, value]) => `${name}: ${value}`), 'Connection: close'];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), Buffer.alloc(request.body ?? 0, 0x61)]);
}

// ---- what every answer must be --------------------------------------------------------------

/** The path of a request target as HTTP defines it: before any "?", absolute form reduced. */
function pathPart(target: string): string {
  const path = target.split('?')[0] ?? '';
  return path.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
}

function errorCode(response: WireResponse): string | undefined {
  if (response.body.length === 0) return undefined;
  return (JSON.parse(response.body.toString('utf8')) as { error?: string }).error;
}

/**
 * Refused by Node's parser before the handler ran: node-host.ts writes that answer straight to the
 * socket, so it has no Date header (and it holds its JSON body even for HEAD).
 */
function refusedByParser(response: WireResponse): boolean {
  return response.status === 400 && response.headers.date === undefined;
}

/** Never a 5xx, never the canary, a 4xx is a short JSON error, a 200 is a published document. */
function expectSafe(fixture: Fixture, request: HostileRequest, response: WireResponse | undefined): asserts response is WireResponse {
  expect(response).toBeDefined();
  if (response === undefined) return;
  expect(response.status).toBeGreaterThanOrEqual(200);
  expect(response.status).toBeLessThan(500);
  expect(response.raw.includes(fixture.canary)).toBe(false);
  if (response.status >= 400) {
    expect(response.headers['content-type']).toBe('application/json');
    if (request.method !== 'HEAD') {
      expect(response.body.length).toBeLessThanOrEqual(200);
      const document = JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
      expect(Object.keys(document).sort()).toEqual(['error', 'message']);
      expect(typeof document.error).toBe('string');
      expect(typeof document.message).toBe('string');
    }
  }
  if (response.status === 200 && request.method === 'GET') {
    const path = pathPart(request.target);
    if (request.fn === 'set') {
      expect(path).toBe('/jwks');
      expect(response.body.equals(fixture.setBytes)).toBe(true);
    } else {
      // Exactly the file of the kid the path names, and only a published one.
      const kid = path.slice('/jwk/'.length);
      expect(path.startsWith('/jwk/') && fixture.keyFiles.has(kid)).toBe(true);
      expect(response.body.equals(fixture.keyFiles.get(kid)!)).toBe(true);
    }
  }
  if (response.status === 304) {
    expect(request.headers.some(([name]) => /^if-(none-match|modified-since)$/i.test(name))).toBe(true);
  }
}

/** The answer the handler owes a well-formed GET or HEAD of this target. */
function expectedStatus(fixture: Fixture, fn: 'set' | 'key', target: string): number {
  const path = pathPart(target);
  if (fn === 'set') return path === '/jwks' ? 200 : 404;
  if (!path.startsWith('/jwk/')) return 404;
  const kid = path.slice('/jwk/'.length);
  if (!VALID_KID.test(kid)) return 400;
  return fixture.keyFiles.has(kid) ? 200 : 404;
}

function expectAnswer(fixture: Fixture, request: HostileRequest, response: WireResponse | undefined, baseline?: WireResponse): void {
  expectSafe(fixture, request, response);
  const parserRefused = refusedByParser(response);
  if (parserRefused && request.method !== 'HEAD') expect(errorCode(response)).toBe('bad_request');
  switch (request.kind) {
    case 'path': {
      // Node parses the request line on whitespace (RFC 9112 3): trailing blanks are not part of the target.
      const expected = expectedStatus(fixture, request.fn, request.target.replace(/[ \t]+$/, ''));
      // A byte Node's parser refuses (NUL, raw non-ASCII, a space) is answered 400 before the handler runs.
      if (expected === 400) expect(response.status).toBe(400);
      else if (!parserRefused) expect(response.status).toBe(expected);
      if (request.method === 'GET' && request.fn === 'key' && request.target.startsWith('/jwk/') && expected === 400 && !parserRefused) expect(errorCode(response)).toBe('invalid_kid');
      break;
    }
    case 'method': {
      const expected = expectedStatus(fixture, request.fn, request.target);
      if (!METHODS.includes(request.method)) expect(response.status).toBe(400);
      else if (request.method === 'GET' || request.method === 'HEAD') expect(response.status).toBe(expected);
      else if (request.method === 'CONNECT') expect(response.status).toBe(405);
      else if (request.method === 'OPTIONS') expect(response.status).toBe(204);
      else {
        expect(response.status).toBe(405);
        expect(response.headers.allow).toBe('GET, HEAD, OPTIONS');
      }
      break;
    }
    case 'header': {
      const names = request.headers.map(([name]) => name.toLowerCase());
      const huge = request.headers.some(([name]) => name === 'X-Huge');
      const malformed = request.headers.some(([name, value]) => MALFORMED.some(([bad, badValue]) => bad === name && badValue === value));
      const expectation = request.headers.find(([name]) => name.toLowerCase() === 'expect');
      // Node reads one Content-Length or Transfer-Encoding; the handler never reads a body.
      const framing = names.includes('content-length') || names.includes('transfer-encoding');
      if (huge) expect(response.status).toBe(431);
      else if (malformed) expect(response.status).toBe(400);
      else if (expectation !== undefined && expectation[1].toLowerCase() !== '100-continue') expect([417, 400]).toContain(response.status);
      else if (!framing && !parserRefused) {
        const expected = expectedStatus(fixture, request.fn, request.target);
        const validators = request.headers.filter(([name]) => /^if-none-match$/i.test(name)).map(([, value]) => value);
        if (expected === 200 && validators.length > 0 && !validators.some((value) => value.includes('*') || [...fixture.etags.values()].some((etag) => value.includes(etag.slice(1, -1))))) {
          expect(response.status).toBe(200);
        } else {
          expect(response.status === expected || (expected === 200 && response.status === 304)).toBe(true);
        }
        const type = response.headers['content-type'];
        if (response.status === 200) expect(request.fn === 'set' ? ['application/jwk-set+json', 'application/json'] : ['application/jwk+json', 'application/json']).toContain(type);
      }
      break;
    }
    case 'query': {
      // A query never changes the answer (or Node refuses the bytes it holds).
      expect(baseline).toBeDefined();
      if (!parserRefused) {
        expect(response.status).toBe(baseline!.status);
        expect(response.body.equals(baseline!.body)).toBe(true);
      }
      break;
    }
  }
}

async function send(fixture: Fixture, urls: { set: string; key: string }, request: HostileRequest): Promise<void> {
  const url = urls[request.fn];
  const head = request.method === 'HEAD';
  const response = await exchange(url, wire(request), { head });
  const baseline = request.baseTarget === undefined ? undefined : await exchange(url, wire(request, request.baseTarget), { head });
  expectAnswer(fixture, request, response, baseline);
}

/** Still alive and serving exactly what is published. */
async function expectServing(fixture: Fixture, urls: { set: string; key: string }): Promise<void> {
  expect((await rawRequest(urls.set, '/healthz')).status).toBe(200);
  const set = await rawRequest(urls.set, '/jwks');
  expect(set.status).toBe(200);
  expect(set.body.equals(fixture.setBytes)).toBe(true);
  for (const [kid, bytes] of fixture.keyFiles) {
    const key = await rawRequest(urls.key, `/jwk/${kid}`);
    expect(key.status).toBe(200);
    expect(key.body.equals(bytes)).toBe(true);
  }
}

const arbitraries: Record<Kind, (fixture: Fixture) => fc.Arbitrary<HostileRequest>> = {
  path: pathRequests,
  method: methodRequests,
  header: headerRequests,
  query: queryRequests,
};

describe('jwks-get and jwk-get under hostile requests (lean host processes, file store)', () => {
  let fixture: Fixture;
  let jwks: RunningFunction;
  let jwk: RunningFunction;
  let urls: { set: string; key: string };

  beforeAll(async () => {
    fixture = await fileFixture();
    const env = { ...fixture.env, JWKS_REVALIDATE_MS: '200' };
    [jwks, jwk] = await Promise.all([
      startFunction({ host: 'lean', target: 'jwks-get', env, waitForReady: true }),
      startFunction({ host: 'lean', target: 'jwk-get', env, waitForReady: true }),
    ]);
    urls = { set: jwks.url, key: jwk.url };
  });
  afterAll(async () => {
    await Promise.all([jwks?.stop(), jwk?.stop()]);
    await fixture?.close();
  });
  afterEach(async () => {
    await expectServing(fixture, urls);
    for (const fn of [jwks, jwk]) {
      await fn.logsWritten();
      expect(fn.output()).not.toMatch(/request_failed|uncaught|unhandled/i);
      // Neither a canary's content nor anything secret-looking reaches a log line.
      expect(fn.output()).not.toContain(fixture.canary);
      expectNoSecretsInLogs(fn.output());
    }
  });

  it('answers hostile kids and paths (encoded dots and slashes, NUL, unicode, overlong, "..", backslashes, double encoding) with a JSON 400 or 404, or exactly the published key', async () => {
    await fc.assert(fc.asyncProperty(pathRequests(fixture), (request) => send(fixture, urls, request)), { numRuns: RUNS * 2 });
  });

  it('answers hostile kids sent through fetch, which normalises the path as browsers do, without a 5xx or anything unpublished', async () => {
    const encodable = kidSegment(fixture).filter((kid) => !/[\0\r\n\t]/.test(kid));
    await fc.assert(
      fc.asyncProperty(encodable, fc.constantFrom<'set' | 'key'>('set', 'key'), async (kid, fn) => {
        const response = await fetch(`${urls[fn]}/jwk/${kid}`);
        const body = Buffer.from(await response.arrayBuffer());
        expect(response.status).toBeLessThan(500);
        expect(body.includes(fixture.canary)).toBe(false);
        if (response.status >= 400) expect(Object.keys(JSON.parse(body.toString()) as object).sort()).toEqual(['error', 'message']);
        if (response.status === 200) expect([...fixture.keyFiles.values()].some((bytes) => bytes.equals(body))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('answers any method, known, unknown, lowercase or CONNECT, with 2xx for GET/HEAD/OPTIONS and a JSON 405 or 400 otherwise', async () => {
    await fc.assert(fc.asyncProperty(methodRequests(fixture), (request) => send(fixture, urls, request)), { numRuns: RUNS });
  });

  it('answers huge, repeated, garbage and odd conditional headers (W/"", *, lists) without a 5xx, with 304 only to a matching validator', async () => {
    await fc.assert(fc.asyncProperty(headerRequests(fixture), (request) => send(fixture, urls, request)), { numRuns: RUNS });
  });

  it('answers the same with any query string as without it', async () => {
    await fc.assert(fc.asyncProperty(queryRequests(fixture), (request) => send(fixture, urls, request)), { numRuns: RUNS });
  });

  it('answers a request Node refuses before the handler (no Host, a NUL in the path, headers over 16 KiB) and keeps serving', async () => {
    const cases: [string, number][] = [
      ['GET /jwk/a\0b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['GET /jwks HTTP/1.1\r\nHost: x\r\nX: ' + 'a'.repeat(HEADER_LIMIT) + '\r\n\r\n', 431],
      ['CONNECT /jwks HTTP/1.1\r\nHost: x\r\n\r\n', 405],
      ['GET /jwks HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n', 417],
    ];
    for (const [request, status] of cases) {
      const response = await exchange(jwks.url, request);
      expect(response?.status).toBe(status);
      expect(response?.headers['content-type']).toBe('application/json');
    }
    // HTTP/1.1 requires Host: Node answers 400 itself, with no body, before any hook can.
    expect((await exchange(jwks.url, 'GET /jwks HTTP/1.1\r\n\r\n'))?.status).toBe(400);
  });
});

describe.each<BackendName>(['file', 's3'])('the store boundary under hostile requests (in process, %s store)', (backendName) => {
  let fixture: Fixture;
  let serving: InProcessServing;
  let urls: { set: string; key: string };

  beforeAll(async () => {
    fixture = backendName === 'file' ? await fileFixture() : await s3Fixture();
    // Revalidating every 20 ms: the store is read all through the hostile traffic.
    serving = await startInProcessServing(fixture.store, { ...fixture.env, JWKS_REVALIDATE_MS: '20' });
    urls = { set: serving.setUrl, key: serving.keyUrl };
  });
  afterAll(async () => {
    await serving?.stop();
    await fixture?.close();
  });

  it('asks the store only for jwks.json and the files of published kids, and never answers from anything else', async () => {
    const allowed = new Set([KEY_SET_OBJECT, ...[...fixture.keyFiles.keys()].map((kid) => keyObjectName(kid) as string)]);
    const readsBefore = serving.store.reads.length;
    const request = fc.oneof(...Object.values(arbitraries).map((arbitrary) => arbitrary(fixture)));
    await fc.assert(fc.asyncProperty(request, (hostile) => send(fixture, urls, hostile)), { numRuns: RUNS * 2 });
    await expectServing(fixture, urls);
    // The loop did read while the requests came in, so the boundary was exercised.
    expect(serving.store.reads.length).toBeGreaterThan(readsBefore);
    expect(serving.store.reads.filter((name) => !allowed.has(name))).toEqual([]);
    expect(serving.store.otherCalls).toEqual([]);
    expect(serving.logText()).not.toMatch(/request_failed/);
  });
});
