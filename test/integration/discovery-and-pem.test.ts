/**
 * Issue 14, discovery and PEM, with the real processes (jwks-get and jwk-get on the lean host the
 * image runs) over loopback on each store: a real discovery client (openid-client v6) finds the
 * keys from the issuer alone and validates ID tokens signed with them; the PEM forms are checked
 * with the openssl CLI and with jose's importSPKI / importX509 verifying a signature.
 */
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CompactSign, SignJWT, compactVerify, importSPKI, importX509 } from 'jose';
import * as client from 'openid-client';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { openBackend, publish, type BackendName, type TestBackend } from '../support/backends.js';
import { certificateFor, derOf, testAuthority } from '../support/certificates.js';
import { itIfInstalled } from '../support/dependencies.js';
import { eventually, metricValue, rawRequest, type RawResponse } from '../support/http.js';
import { ecKey, rsaKey, type TestKey } from '../support/keys.js';
import { partnerDependencies, systemPython } from '../support/partner-clients.js';
import { freePort, startFunction, type RunningFunction } from '../support/processes.js';

const run = promisify(execFile);
const CLIENT_ID = 'partner-app';
const python = partnerDependencies();
const pythonDiscovery = fileURLToPath(new URL('../clients/pyjwt_discovery.py', import.meta.url));

interface PythonAnswer {
  readonly ok: boolean;
  readonly kid?: string;
  readonly claims?: Record<string, unknown>;
  readonly algorithms?: string[];
  readonly error?: string;
}

/** The Python partner of test/clients/pyjwt_discovery.py, given our issuer only. */
async function pythonVerify(issuer: string, token: string): Promise<PythonAnswer> {
  const args = [pythonDiscovery, `--issuer=${issuer}`, `--audience=${CLIENT_ID}`, `--token=${token}`];
  // Only PATH: no proxy variables (urllib honours them).
  const { stdout } = await run(systemPython, args, { env: { PATH: '/usr/bin:/bin' }, timeout: 20_000 });
  return JSON.parse(stdout) as PythonAnswer;
}

function etagOf(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('base64url')}"`;
}

function errorOf(response: RawResponse): string {
  expect(response.headers['content-type']).toBe('application/json');
  return (JSON.parse(response.body.toString()) as { error: string }).error;
}

/** The key's JWK with its chain: the leaf issued by the test bank PKI, then the issuing CA. */
function withChain(key: TestKey, leafPem: string, issuingPem: string): PublicJwk {
  const x5t = createHash('sha256').update(new X509Certificate(leafPem).raw).digest('base64url');
  return { ...key.jwk, x5c: [derOf(leafPem), derOf(issuingPem)], 'x5t#S256': x5t };
}

async function idToken(key: TestKey, issuer: string, nonce: string): Promise<string> {
  return new SignJWT({ nonce })
    .setProtectedHeader({ alg: key.jwk.alg, kid: key.jwk.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(CLIENT_ID)
    .setSubject('customer-42')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

describe.each<BackendName>(['file', 's3'])('discovery and PEM on the %s store', (backendName) => {
  let backend: TestBackend;
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  let jwks: RunningFunction;
  let jwk: RunningFunction;
  let issuer: string;
  let jwksUri: string;
  let rs256: TestKey;
  let ps256: TestKey;
  let es256: TestKey;
  let encryption: TestKey;
  let leafPem: string;
  let keys: PublicJwk[];
  let scratch: string;

  beforeAll(async () => {
    [backend, ca, rs256, ps256, es256, encryption] = await Promise.all([openBackend(backendName), testAuthority(), rsaKey('sig'), rsaKey('sig', 'PS256'), ecKey('P-256'), rsaKey('enc')]);
    scratch = await mkdtemp(join(tmpdir(), 'pem-test-'));
    leafPem = await certificateFor(ca, createPublicKey(rs256.privateKey));
    keys = [withChain(rs256, leafPem, ca.issuingPem), ps256.jwk, es256.jwk, encryption.jwk];
    await publish(backend.store, keys);
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    jwksUri = `${issuer}/jwks`;
    const env = { ...backend.env, JWKS_REVALIDATE_MS: '100', JWKS_ISSUER: issuer, JWKS_PUBLIC_URL: jwksUri };
    [jwks, jwk] = await Promise.all([
      startFunction({ host: 'lean', target: 'jwks-get', env, port, waitForReady: true }),
      startFunction({ host: 'lean', target: 'jwk-get', env, waitForReady: true }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([jwks?.stop(), jwk?.stop()]);
    await backend?.close();
    await ca?.remove();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  describe('GET /.well-known/openid-configuration', () => {
    it('names the issuer, jwks_uri and the signing algorithms of the served set, and nothing we are not', async () => {
      const response = await rawRequest(jwks.url, '/.well-known/openid-configuration');
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/json');
      expect(JSON.parse(response.body.toString())).toEqual({
        issuer,
        jwks_uri: jwksUri,
        // The encryption key adds nothing; sorted, distinct.
        id_token_signing_alg_values_supported: ['ES256', 'PS256', 'RS256'],
      });
      // From the configuration only: the request's Host and forwarding headers change nothing.
      const spoofed = await rawRequest(jwks.url, '/.well-known/openid-configuration', {
        headers: { Host: 'attacker.example', 'X-Forwarded-Host': 'attacker.example', 'X-Forwarded-Proto': 'http', Forwarded: 'host=attacker.example' },
      });
      expect(spoofed.body.equals(response.body)).toBe(true);
    });

    it('has the caching, validator and CORS rules of /jwks: ETag of its bytes, 304, HEAD, OPTIONS, 405', async () => {
      const set = await rawRequest(jwks.url, '/jwks');
      const response = await rawRequest(jwks.url, '/.well-known/openid-configuration');
      expect(response.headers.etag).toBe(etagOf(response.body));
      expect(response.headers['cache-control']).toBe(set.headers['cache-control']);
      expect(response.headers['access-control-allow-origin']).toBe('*');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(Date.parse(String(response.headers['last-modified']))).not.toBeNaN();
      const conditional = await rawRequest(jwks.url, '/.well-known/openid-configuration', { headers: { 'If-None-Match': String(response.headers.etag) } });
      expect(conditional.status).toBe(304);
      expect(conditional.body.length).toBe(0);
      const since = await rawRequest(jwks.url, '/.well-known/openid-configuration', { headers: { 'If-Modified-Since': String(response.headers['last-modified']) } });
      expect(since.status).toBe(304);
      const head = await rawRequest(jwks.url, '/.well-known/openid-configuration', { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect(head.headers['content-length']).toBe(String(response.body.length));
      expect(head.headers.etag).toBe(response.headers.etag);
      expect((await rawRequest(jwks.url, '/.well-known/openid-configuration', { method: 'OPTIONS' })).status).toBe(204);
      const post = await rawRequest(jwks.url, '/.well-known/openid-configuration', { method: 'POST' });
      expect(post.status).toBe(405);
      expect(errorOf(post)).toBe('method_not_allowed');
      const metrics = (await rawRequest(jwks.url, '/metrics')).body.toString();
      expect(metricValue(metrics, 'jwks_http_requests_total{function="jwks-get",route="discovery",status="200"}')).toBeGreaterThanOrEqual(2);
      expect(metricValue(metrics, 'jwks_http_requests_total{function="jwks-get",route="discovery",status="304"}')).toBeGreaterThanOrEqual(2);
    });

    it('lets openid-client v6 discover the keys from the issuer alone and validate ID tokens of each signing key', async () => {
      const config = await client.discovery(new URL(issuer), CLIENT_ID, undefined, undefined, { execute: [client.allowInsecureRequests] });
      expect(config.serverMetadata().jwks_uri).toBe(jwksUri);
      client.useIdTokenResponseType(config);
      for (const key of [rs256, ps256, es256]) {
        const nonce = client.randomNonce();
        const token = await idToken(key, issuer, nonce);
        const claims = await client.implicitAuthentication(config, new URL(`https://partner.example/callback#id_token=${token}`), nonce);
        expect(claims).toMatchObject({ iss: issuer, sub: 'customer-42', aud: CLIENT_ID });
      }
      // A token from another issuer, signed by a published key, is refused by the same client.
      const nonce = client.randomNonce();
      const foreign = await idToken(rs256, 'https://elsewhere.example', nonce);
      await expect(client.implicitAuthentication(config, new URL(`https://partner.example/callback#id_token=${foreign}`), nonce)).rejects.toMatchObject({
        code: 'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
        cause: { cause: { claim: 'iss' } },
      });
    });

    itIfInstalled('lets PyJWT find the keys through discovery (PyJWKClient on the discovered jwks_uri)', python.ok ? [] : python.missing, python.ok ? '' : python.install, async () => {
      for (const key of [rs256, ps256, es256]) {
        const answer = await pythonVerify(issuer, await idToken(key, issuer, 'n'));
        expect(answer).toMatchObject({ ok: true, kid: key.jwk.kid, claims: { iss: issuer, sub: 'customer-42' }, algorithms: ['ES256', 'PS256', 'RS256'] });
      }
      // A token from another issuer is refused by the same partner.
      expect((await pythonVerify(issuer, await idToken(es256, 'https://elsewhere.example', 'n'))).error).toMatch(/^InvalidIssuerError/);
    });

    it('follows the served set: a new set brings its algorithms and a new ETag', async () => {
      const before = await rawRequest(jwks.url, '/.well-known/openid-configuration');
      const es384 = await ecKey('P-384');
      await publish(backend.store, [...keys, es384.jwk]);
      try {
        await eventually(async () => (await rawRequest(jwks.url, '/.well-known/openid-configuration')).headers.etag !== before.headers.etag, 10_000);
        const after = await rawRequest(jwks.url, '/.well-known/openid-configuration');
        expect((JSON.parse(after.body.toString()) as { id_token_signing_alg_values_supported: string[] }).id_token_signing_alg_values_supported).toEqual(['ES256', 'ES384', 'PS256', 'RS256']);
        expect(after.headers.etag).toBe(etagOf(after.body));
        expect((await rawRequest(jwks.url, '/.well-known/openid-configuration', { headers: { 'If-None-Match': String(before.headers.etag) } })).status).toBe(200);
      } finally {
        await publish(backend.store, keys);
        await eventually(async () => !(await rawRequest(jwks.url, '/jwks')).body.toString().includes(es384.jwk.kid), 10_000);
      }
    });

    it('is a 404 where discovery is not configured, and on jwk-get', async () => {
      const bare = await startFunction({ host: 'lean', target: 'jwks-get', env: { ...backend.env }, waitForReady: true });
      try {
        const response = await rawRequest(bare.url, '/.well-known/openid-configuration');
        expect(response.status).toBe(404);
        expect(errorOf(response)).toBe('not_found');
        expect((await rawRequest(bare.url, '/jwks')).status).toBe(200);
      } finally {
        await bare.stop();
      }
      expect((await rawRequest(jwk.url, '/.well-known/openid-configuration')).status).toBe(404);
    });
  });

  describe('GET /jwk/{kid}.pem and /jwk/{kid}.crt', () => {
    it('serves the SubjectPublicKeyInfo PEM that openssl reads as the key and jose verifies a signature with', async () => {
      for (const key of [rs256, ps256, es256]) {
        const response = await rawRequest(jwk.url, `/jwk/${key.jwk.kid}.pem`);
        expect(response.status).toBe(200);
        expect(response.headers['content-type']).toBe('application/x-pem-file');
        const pem = response.body.toString();
        expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
        const file = join(scratch, `${key.jwk.kid}.pem`);
        await writeFile(file, pem);
        const der = (await run('openssl', ['pkey', '-pubin', '-in', file, '-outform', 'DER'], { encoding: 'buffer' })).stdout;
        expect(der.equals(createPublicKey(key.privateKey).export({ type: 'spki', format: 'der' }))).toBe(true);
        const jws = await new CompactSign(new TextEncoder().encode('payment 42')).setProtectedHeader({ alg: key.jwk.alg }).sign(key.privateKey);
        const verified = await compactVerify(jws, await importSPKI(pem, key.jwk.alg));
        expect(new TextDecoder().decode(verified.payload)).toBe('payment 42');
      }
    });

    it('serves the leaf certificate of a key with a chain, holding the same key as the .pem', async () => {
      const response = await rawRequest(jwk.url, `/jwk/${rs256.jwk.kid}.crt`);
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/pem-certificate-chain');
      const certificate = response.body.toString();
      expect(new X509Certificate(certificate).raw.equals(new X509Certificate(leafPem).raw)).toBe(true);
      const file = join(scratch, 'leaf.crt');
      await writeFile(file, certificate);
      const { stdout: publicKey } = await run('openssl', ['x509', '-noout', '-pubkey', '-in', file]);
      expect(publicKey).toBe((await rawRequest(jwk.url, `/jwk/${rs256.jwk.kid}.pem`)).body.toString());
      const jws = await new CompactSign(new TextEncoder().encode('payment 43')).setProtectedHeader({ alg: 'RS256' }).sign(rs256.privateKey);
      await expect(compactVerify(jws, await importX509(certificate, 'RS256'))).resolves.toBeDefined();
    });

    it('has the caching rules of /jwk/{kid}, with an ETag per representation', async () => {
      const json = await rawRequest(jwk.url, `/jwk/${rs256.jwk.kid}`);
      for (const suffix of ['.pem', '.crt']) {
        const path = `/jwk/${rs256.jwk.kid}${suffix}`;
        const response = await rawRequest(jwk.url, path);
        expect(response.headers.etag).toBe(etagOf(response.body));
        expect(response.headers.etag).not.toBe(json.headers.etag);
        expect(response.headers['cache-control']).toBe(json.headers['cache-control']);
        expect(response.headers['last-modified']).toBe(json.headers['last-modified']);
        expect(response.headers['access-control-allow-origin']).toBe('*');
        expect((await rawRequest(jwk.url, path, { headers: { 'If-None-Match': String(response.headers.etag) } })).status).toBe(304);
        // The JSON key's ETag does not validate the PEM.
        expect((await rawRequest(jwk.url, path, { headers: { 'If-None-Match': String(json.headers.etag) } })).status).toBe(200);
        const head = await rawRequest(jwk.url, path, { method: 'HEAD' });
        expect([head.status, head.body.length, head.headers['content-length']]).toEqual([200, 0, String(response.body.length)]);
        // Accept: application/json does not turn PEM into JSON.
        expect((await rawRequest(jwk.url, path, { headers: { Accept: 'application/json' } })).headers['content-type']).toBe(response.headers['content-type']);
      }
      const metrics = (await rawRequest(jwk.url, '/metrics')).body.toString();
      expect(metricValue(metrics, 'jwks_http_requests_total{function="jwk-get",route="jwk_pem",status="200"}')).toBeGreaterThan(0);
      expect(metricValue(metrics, 'jwks_http_requests_total{function="jwk-get",route="jwk_crt",status="304"}')).toBeGreaterThan(0);
    });

    it('answers the 404 and 400 rules of /jwk/{kid}: no certificate, unknown kid, malformed kid', async () => {
      const noChain = await rawRequest(jwk.url, `/jwk/${es256.jwk.kid}.crt`);
      expect(noChain.status).toBe(404);
      expect(errorOf(noChain)).toBe('no_certificate');
      expect(noChain.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
      for (const suffix of ['.pem', '.crt']) {
        const unknown = await rawRequest(jwk.url, `/jwk/${'A'.repeat(43)}${suffix}`);
        expect([unknown.status, errorOf(unknown)]).toEqual([404, 'unknown_kid']);
        for (const kid of ['', 'a.b', '..%2Fjwks', '%C3%A9', 'A'.repeat(129), `${rs256.jwk.kid}.pem`]) {
          const malformed = await rawRequest(jwk.url, `/jwk/${kid}${suffix}`);
          expect([malformed.status, errorOf(malformed)]).toEqual([400, 'invalid_kid']);
        }
      }
      expect((await rawRequest(jwk.url, `/jwk/${rs256.jwk.kid}.der`)).status).toBe(400);
    });
  });
});
