/**
 * Issue 7, hostile CloudEvents to key-rotated, property-based (fast-check), against key-rotated in
 * its own process (lean host) reading the CipherTrust Manager emulator and publishing to a file
 * store: wrong specversion, missing or mistyped attributes, invalid JSON, structured and binary
 * mode mixed, batch oddities, oversized bodies. Always a JSON 4xx or 202 (or, for an event that
 * is valid after all, a normal publication), never a 5xx, never a crash. A rotation event carrying
 * key material (a JWK, a JWK Set, a PEM, in data, data_base64 or an extension) is a plain signal:
 * keys come from CM only, every CM key is read as for any event, the material is never published.
 */
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import { calculateJwkThumbprint } from 'jose';
import { PING_EVENT_TYPE, ROTATION_EVENT_TYPES } from '../../shared/events/rotation-events.js';
import { rawRequest } from '../support/http.js';
import { credentialValues, expectNoSecretsInLogs } from '../support/log-secrets.js';
import { startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const MAX_EVENT_BYTES = 64 * 1024;
const ROTATED = 'com.thalesgroup.ciphertrust.key.rotated';

interface Posted {
  readonly status: number;
  readonly body: Buffer;
}

/** POSTs to key-rotated; `chunked` sends the body without a Content-Length, in two writes. */
function post(url: string, headers: Record<string, string>, body: Buffer, chunked = false): Promise<Posted> {
  const { hostname, port } = new URL(url);
  return new Promise((done, fail) => {
    const req = request({ hostname, port, path: '/', method: 'POST', headers: chunked ? headers : { ...headers, 'Content-Length': String(body.length) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
    if (chunked && body.length > 1) {
      req.write(body.subarray(0, body.length >> 1));
      req.end(body.subarray(body.length >> 1));
    } else {
      req.end(body);
    }
  });
}

// ---- hostile requests -----------------------------------------------------------------------

interface HostileEvent {
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly chunked: boolean;
}

const PRINTABLE = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 60 });
const EVENT_TYPES = [...ROTATION_EVENT_TYPES, PING_EVENT_TYPE, 'com.example.other', ROTATED.toUpperCase(), `${ROTATED} `, ` ${ROTATED}`, `${ROTATED}\u0000`];
const STRING_ATTRIBUTE = fc.oneof(
  fc.constantFrom('1.0', '0.3', '1', '1.0 ', ' 1.0', '', '2.0', '/s', 'x'.repeat(5000), ...EVENT_TYPES),
  fc.string({ maxLength: 40 }),
);
/** What a JSON attribute can hold instead of a string. */
const ANY_ATTRIBUTE = fc.oneof(
  { weight: 4, arbitrary: STRING_ATTRIBUTE },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constant(null), fc.boolean(), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.object({ maxDepth: 1, maxKeys: 2 })) },
);

/** A structured-mode event object: each attribute there or not, of any type, plus odd extensions. */
const eventObject = fc
  .record(
    {
      specversion: fc.oneof({ weight: 3, arbitrary: fc.constant('1.0') }, { weight: 1, arbitrary: ANY_ATTRIBUTE }),
      id: fc.oneof({ weight: 3, arbitrary: fc.uuid() }, { weight: 1, arbitrary: ANY_ATTRIBUTE }),
      source: fc.oneof({ weight: 3, arbitrary: fc.constant('/rotation-pipeline') }, { weight: 1, arbitrary: ANY_ATTRIBUTE }),
      type: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...EVENT_TYPES) }, { weight: 1, arbitrary: ANY_ATTRIBUTE }),
      data: fc.jsonValue({ maxDepth: 3 }),
      data_base64: ANY_ATTRIBUTE,
      datacontenttype: fc.oneof(fc.constantFrom('application/json', 'text/plain', 'application/xml', ''), ANY_ATTRIBUTE),
      time: fc.oneof(fc.constantFrom('2026-11-24T08:00:00Z', 'yesterday', ''), ANY_ATTRIBUTE),
      dataschema: fc.oneof(fc.constantFrom('https://schema.example/x', 'not a uri', ''), ANY_ATTRIBUTE),
      subject: ANY_ATTRIBUTE,
    },
    { requiredKeys: [] },
  )
  .chain((event) =>
    fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z0-9]{1,20}$/), fc.constantFrom('Bad-Name', 'UPPER', 'x'.repeat(40), '__proto__', 'constructor', '')), ANY_ATTRIBUTE, { maxKeys: 3 }).map((extensions) => ({ ...extensions, ...event })),
  );

const STRUCTURED_TYPES = ['application/cloudevents+json', 'application/cloudevents+json; charset=utf-8', 'APPLICATION/CLOUDEVENTS+JSON', 'application/cloudevents', 'application/cloudevents+xml', 'application/cloudevents+json; charset=utf-16'];
const BATCH_TYPE = 'application/cloudevents-batch+json';

/** Binary-mode attributes as ce-* headers, some missing, empty, odd or repeated in spelling. */
const binaryHeaders = fc
  .record(
    {
      'ce-specversion': fc.oneof({ weight: 3, arbitrary: fc.constant('1.0') }, { weight: 1, arbitrary: PRINTABLE }),
      'ce-id': fc.oneof({ weight: 3, arbitrary: fc.uuid() }, { weight: 1, arbitrary: PRINTABLE }),
      'ce-source': fc.oneof({ weight: 3, arbitrary: fc.constant('/rotation-pipeline') }, { weight: 1, arbitrary: PRINTABLE }),
      'ce-type': fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...EVENT_TYPES.filter((type) => !type.includes('\u0000'))) }, { weight: 1, arbitrary: PRINTABLE }),
      'ce-time': fc.oneof(fc.constantFrom('2026-11-24T08:00:00Z', 'yesterday'), PRINTABLE),
      'ce-dataschema': PRINTABLE,
      'ce-Bad_Extension': PRINTABLE,
      'ce-averyveryverylongextensionname': PRINTABLE,
      'ce-data_base64': PRINTABLE,
      'content-type': fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', 'application/json; charset=latin1', ''),
    },
    { requiredKeys: [] },
  )
  .map((headers): Record<string, string> => ({ ...headers }));

const invalidJson = fc.oneof(
  fc.constantFrom('', '{', '{"specversion":', '[', ']', 'null', '"1.0"', '1.0', 'true', '{"specversion":"1.0",}', "{'specversion':'1.0'}", '\u0000', '\ufeff{}', 'NaN'),
  fc.string({ maxLength: 80 }),
  fc.integer({ min: 1000, max: 30_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1000, max: 10_000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
);

const hostileEvents: fc.Arbitrary<HostileEvent> = fc.oneof(
  // Structured mode, well-formed JSON with odd attributes, or no JSON at all.
  fc.record({
    headers: fc.constantFrom(...STRUCTURED_TYPES).map((type) => ({ 'content-type': type })),
    body: fc.oneof(eventObject.map((event) => JSON.stringify(event)), invalidJson),
    chunked: fc.boolean(),
  }),
  // Batch mode: empty, too many, nested, not an array, a mix of good and bad members.
  fc.record({
    headers: fc.constant({ 'content-type': BATCH_TYPE }),
    body: fc.oneof(
      fc.array(eventObject, { maxLength: 5 }).map((events) => JSON.stringify(events)),
      fc.constantFrom('[]', '[[]]', '[null]', '[1,2]', '{}', '[{}]', '"batch"'),
      eventObject.map((event) => JSON.stringify(event)),
      fc.integer({ min: 101, max: 150 }).map((count) => JSON.stringify(Array.from({ length: count }, (_, index) => ({ specversion: '1.0', id: `b-${index}`, source: '/s', type: ROTATED })))),
      fc.array(eventObject, { minLength: 1, maxLength: 3 }).map((events) => JSON.stringify([events])),
      invalidJson,
    ),
    chunked: fc.boolean(),
  }),
  // Binary mode: ce-* headers, with a body of any kind.
  fc.record({ headers: binaryHeaders, body: fc.oneof(fc.constant(''), invalidJson, fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value))), chunked: fc.boolean() }),
  // Both modes at once: a structured Content-Type and ce-* headers that disagree with the body.
  fc.record({
    headers: fc.tuple(binaryHeaders, fc.constantFrom(...STRUCTURED_TYPES, BATCH_TYPE)).map(([headers, type]) => ({ ...headers, 'content-type': type })),
    body: fc.oneof(eventObject.map((event) => JSON.stringify(event)), fc.constant(''), invalidJson),
    chunked: fc.boolean(),
  }),
  // Not a CloudEvent at all.
  fc.record({
    headers: fc.constantFrom<Record<string, string>>({}, { 'content-type': 'application/json' }, { 'content-type': 'text/plain' }, { 'content-type': 'multipart/form-data; boundary=x' }),
    body: fc.oneof(fc.constant(''), invalidJson, eventObject.map((event) => JSON.stringify(event))),
    chunked: fc.boolean(),
  }),
  // Over the size limit, declared or not.
  fc.record({
    headers: fc.constantFrom<Record<string, string>>({ 'content-type': 'application/cloudevents+json' }, { 'content-type': BATCH_TYPE }, { 'ce-specversion': '1.0', 'ce-id': 'big', 'ce-source': '/s', 'ce-type': ROTATED, 'content-type': 'application/json' }),
    body: fc.integer({ min: MAX_EVENT_BYTES + 1, max: 3 * MAX_EVENT_BYTES }).map((size) => JSON.stringify({ specversion: '1.0', id: 'big', source: '/s', type: ROTATED, data: 'x'.repeat(size) })),
    chunked: fc.boolean(),
  }),
);

// ---- key material an attacker puts in an event ----------------------------------------------

interface Attacker {
  readonly kid: string;
  readonly publicJwk: Record<string, unknown>;
  readonly privateJwk: Record<string, unknown>;
  readonly publicPem: string;
  readonly privatePem: string;
  /** Strings that must appear in no published file. */
  readonly secrets: readonly string[];
}

async function attackerKey(): Promise<Attacker> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const exported = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const kid = await calculateJwkThumbprint(exported);
  const publicJwk = { ...exported, kid, use: 'sig', alg: 'ES256' };
  const privateJwk: Record<string, string> = { ...(privateKey.export({ format: 'jwk' }) as Record<string, string>), kid, use: 'sig', alg: 'ES256' };
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pemBody = (pem: string): string => pem.split('\n').slice(1, 3).join('');
  return { kid, publicJwk, privateJwk, publicPem, privatePem, secrets: [kid, exported.x, exported.y, privateJwk.d!, pemBody(publicPem), pemBody(privatePem)] };
}

type Mode = 'binary' | 'structured' | 'batch';
const MATERIALS = ['public-jwk', 'private-jwk', 'jwks', 'public-pem', 'private-pem', 'base64-pem', 'extension'] as const;
type Material = (typeof MATERIALS)[number];

/** A valid rotation event (or ping) in the given mode whose payload is the attacker's key. */
function eventWithMaterial(attacker: Attacker, type: string, mode: Mode, material: Material | undefined, field: string): { headers: Record<string, string>; body: string } {
  const attributes = { specversion: '1.0', id: randomUUID(), source: '/rotation-pipeline', type };
  if (material === undefined) {
    if (mode === 'binary') return { headers: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [`ce-${name}`, value])), body: '' };
    const body = mode === 'structured' ? JSON.stringify(attributes) : JSON.stringify([attributes, { ...attributes, id: randomUUID() }]);
    return { headers: { 'content-type': mode === 'structured' ? 'application/cloudevents+json' : BATCH_TYPE }, body };
  }
  const payloads: Record<Exclude<Material, 'base64-pem' | 'extension'>, unknown> = {
    'public-jwk': { [field]: attacker.publicJwk },
    'private-jwk': { [field]: attacker.privateJwk },
    jwks: { keys: [attacker.publicJwk, attacker.privateJwk] },
    'public-pem': { [field]: attacker.publicPem, kid: attacker.kid },
    'private-pem': attacker.privatePem,
  };
  const base64Pem = Buffer.from(attacker.publicPem).toString('base64');
  if (mode === 'binary') {
    const headers: Record<string, string> = Object.fromEntries(Object.entries(attributes).map(([name, value]) => [`ce-${name}`, value]));
    if (material === 'extension') return { headers: { ...headers, 'ce-jwk': JSON.stringify(attacker.publicJwk), 'ce-kid': attacker.kid, 'ce-publickey': base64Pem }, body: '' };
    if (material === 'base64-pem') return { headers: { ...headers, 'content-type': 'application/octet-stream' }, body: attacker.publicPem };
    const data = payloads[material];
    return { headers: { ...headers, 'content-type': typeof data === 'string' ? 'application/x-pem-file' : 'application/json' }, body: typeof data === 'string' ? data : JSON.stringify(data) };
  }
  const event =
    material === 'extension'
      ? { ...attributes, jwk: JSON.stringify(attacker.publicJwk), kid: attacker.kid, publickey: base64Pem }
      : material === 'base64-pem'
        ? { ...attributes, datacontenttype: 'application/x-pem-file', data_base64: base64Pem }
        : { ...attributes, datacontenttype: 'application/json', data: payloads[material] };
  if (mode === 'structured') return { headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(event) };
  return { headers: { 'content-type': BATCH_TYPE }, body: JSON.stringify([event, { ...event, id: randomUUID(), data: { keys: [attacker.privateJwk] } }]) };
}

// ---- the publication seen from outside ------------------------------------------------------

/** The kids CM's keys must be published under: RFC 7638 thumbprints of their public keys. */
async function cmKids(stack: PublisherStack): Promise<string[]> {
  const kids = await Promise.all(
    stack.emulator.keys.list().map((key) => {
      const pem = stack.emulator.keys.get(key.id)?.publickey;
      if (pem === undefined) throw new Error(`no public key for ${key.id}`);
      return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }));
    }),
  );
  return kids.sort();
}

/** Every file in the store, by name. */
async function storeFiles(stack: PublisherStack): Promise<Map<string, string>> {
  const directory = stack.backend.directory!;
  const files = new Map<string, string>();
  for (const name of await readdir(directory)) files.set(name, await readFile(join(directory, name), 'utf8'));
  return files;
}

/** Published exactly CM's keys, nothing of the attacker's, in every file the store holds. */
async function expectPublishedFromCmOnly(stack: PublisherStack, attacker: Attacker | undefined): Promise<void> {
  const expected = await cmKids(stack);
  expect(await stack.publishedKids()).toEqual(expected);
  const files = await storeFiles(stack);
  const names = [...files.keys()].filter((name) => !name.startsWith('.'));
  expect(names.sort()).toEqual(['jwks-sources.json', 'jwks.json', ...expected.map((kid) => `jwk-${kid}.json`)].sort());
  if (attacker !== undefined) {
    for (const [name, text] of files) {
      for (const secret of attacker.secrets) expect({ name, leaked: text.includes(secret) }).toEqual({ name, leaked: false });
    }
  }
}

async function expectAlive(stack: PublisherStack): Promise<void> {
  expect((await rawRequest(stack.keyRotated.url, '/healthz')).status).toBe(200);
  expect(stack.keyRotated.output()).not.toMatch(/request_failed|uncaught|unhandled/i);
  // No credential, and none of the key material the events carried, in a log line.
  expectNoSecretsInLogs(stack.keyRotated.output(), { secrets: credentialValues(stack.env) });
}

describe('key-rotated under hostile CloudEvents (lean host, CM emulator, file store)', () => {
  let stack: PublisherStack;
  let attacker: Attacker;

  beforeAll(async () => {
    // Every property run may add a key in CM: the set outgrows the default key cap (20), which is not this suite's subject.
    stack = await startPublisherStack('file', { env: { JWKS_MAX_KEYS: '1000' } });
    for (let index = 0; index < 3; index++) {
      stack.emulator.keys.create({ name: `signing-${index}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { jwks: 'publish' } });
    }
    expect((await stack.ping()).status).toBe(200);
    attacker = await attackerKey();
  });
  afterAll(() => stack?.close());
  afterEach(() => expectAlive(stack));

  it('answers malformed, mixed-mode, odd-batch and oversized CloudEvents with a JSON 4xx or 202, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(hostileEvents, async ({ headers, body, chunked }) => {
        const bytes = Buffer.from(body, 'utf8');
        const answer = await post(stack.keyRotated.url, headers, bytes, chunked);
        expect(answer.status).toBeLessThan(500);
        const document = JSON.parse(answer.body.toString()) as Record<string, unknown>;
        if (bytes.length > MAX_EVENT_BYTES) expect(answer.status).toBe(413);
        if (answer.status >= 400) {
          expect([400, 413]).toContain(answer.status);
          expect(Object.keys(document).sort()).toEqual(['error', 'message']);
          expect(String(document.message).length).toBeLessThanOrEqual(400);
        } else if (answer.status === 202) {
          expect(document.status).toBe('ignored');
        } else {
          // A request that is a valid rotation event or ping after all runs an ordinary publication.
          expect(answer.status).toBe(200);
          expect(['published', 'unchanged']).toContain(document.outcome);
        }
      }),
      { numRuns: 120 },
    );
    await expectPublishedFromCmOnly(stack, undefined);
  });

  it('takes no key material from a rotation event (JWK, JWK Set, PEM, in data, data_base64 or an extension): keys come from CM, read as for a plain event', async () => {
    /** Creates a key in CM when asked, sends the event, checks the answer; returns the CM calls it caused. */
    const cycle = async (type: string, mode: Mode, material: Material | undefined, field: string, cmChanges: boolean): Promise<{ calls: string[]; created?: string }> => {
      const created = cmChanges
        ? stack.emulator.keys.create({ name: `added-${randomUUID()}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { jwks: 'publish' } }).id
        : undefined;
      stack.emulator.clearRequests();
      const { headers, body } = eventWithMaterial(attacker, type, mode, material, field);
      const answer = await post(stack.keyRotated.url, headers, Buffer.from(body));
      expect(answer.status).toBe(200);
      expect((JSON.parse(answer.body.toString()) as { outcome: string }).outcome).toBe(cmChanges ? 'published' : 'unchanged');
      // A key CM holds but key-rotated has not read yet is fetched, whatever the event said.
      const fetched = stack.emulator.requests.filter((recorded) => recorded.endpoint === 'get').map((recorded) => recorded.path.split('/').pop());
      if (created !== undefined) expect(fetched).toContain(created);
      // Login calls depend on the token's age, not on the event.
      const calls = stack.emulator.requests.filter((recorded) => recorded.endpoint !== 'auth').map((recorded) => `${recorded.method} ${recorded.endpoint} ${JSON.stringify(recorded.query)}`);
      return { calls: calls.sort(), created };
    };
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          type: fc.constantFrom(...ROTATION_EVENT_TYPES, PING_EVENT_TYPE),
          mode: fc.constantFrom<Mode>('binary', 'structured', 'batch'),
          material: fc.constantFrom(...MATERIALS),
          field: fc.constantFrom('jwk', 'key', 'keys', 'publicKey', 'material', 'pem', 'x5c', 'd'),
          cmChanges: fc.boolean(),
        }),
        async ({ type, mode, material, field, cmChanges }) => {
          const withMaterial = await cycle(type, mode, material, field, cmChanges);
          await expectPublishedFromCmOnly(stack, attacker);
          // The same event without the material, after the same change in CM: the same CM calls.
          const plain = await cycle(type, mode, undefined, field, cmChanges);
          expect(withMaterial.calls).toEqual(plain.calls);
          expect(withMaterial.calls.some((call) => call.includes(' list '))).toBe(true);
          await expectPublishedFromCmOnly(stack, attacker);
        },
      ),
      { numRuns: 15 },
    );
  });
});
