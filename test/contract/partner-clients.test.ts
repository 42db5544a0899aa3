/**
 * The partner-client harness itself (test/support/partner-clients.ts), proven against a tiny static
 * JWKS served here: PyJWT, jwcrypto and jwks-rsa, each long-running in its own process, verify
 * tokens, list the keys they accept, encrypt to published keys, and keep their caches as in real life.
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, compactDecrypt, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { publicKeyObject, validateKeySet, type PublicJwk } from '../../shared/jwks/validate.js';
import { certificateFor, derOf, testAuthority } from '../support/certificates.js';
import { eventually } from '../support/http.js';
import { ecKey, rsaKey, signToken, type TestKey } from '../support/keys.js';
import {
  encrypt,
  failed,
  loadSet,
  partnerDependencies,
  startJwksRsaPartner,
  startPythonPartner,
  succeeded,
  verify,
  type ClientName,
  type PartnerClient,
  type PartnerProcess,
} from '../support/partner-clients.js';
import { describeIfInstalled } from '../support/dependencies.js';

const dependencies = partnerDependencies();
const describeIfPartners = (name: string, body: () => void): void =>
  describeIfInstalled(name, dependencies.ok ? [] : dependencies.missing, dependencies.ok ? '' : dependencies.install, body);

/** A JWKS on loopback whose keys the test swaps at will; counts its fetches. */
interface JwksServer {
  readonly url: string;
  keys: PublicJwk[];
  fetches: number;
  close(): Promise<void>;
}

async function serveJwks(keys: PublicJwk[]): Promise<JwksServer> {
  const server: Server = createServer((request, response) => {
    jwks.fetches += 1;
    const body = JSON.stringify({ keys: jwks.keys });
    response.writeHead(request.url === '/jwks' ? 200 : 404, { 'content-type': 'application/json', connection: 'close' });
    response.end(request.url === '/jwks' ? body : '{}');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const jwks: JwksServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
    keys,
    fetches: 0,
    close: () => new Promise((done) => server.close(() => done())),
  };
  return jwks;
}

/** The partner that hosts a client library, started against `jwksUrl` with the cache lifespan given. */
function startFor(name: ClientName, jwksUrl: string, lifespanSeconds: number): PartnerClient {
  const partner = name === 'jwks-rsa' ? startJwksRsaPartner({ jwksUrl, lifespanMs: lifespanSeconds * 1000 }) : startPythonPartner({ jwksUrl, lifespanSeconds });
  return { partner, name };
}

const unknownKidError: Record<ClientName, RegExp> = {
  pyjwt: /^PyJWKClientError: Unable to find a signing key that matches/,
  jwcrypto: /^JWTMissingKey: .*not in key set/,
  'jwks-rsa': /^SigningKeyNotFoundError: Unable to find a signing key that matches/,
};
const clientNames: ClientName[] = ['pyjwt', 'jwcrypto', 'jwks-rsa'];

describeIfPartners('partner clients against a static JWKS', () => {
  let rs256: TestKey;
  let es256: TestKey;
  let rsaOaep: TestKey;
  let ecdhEs: TestKey;
  let unpublished: TestKey;
  let jwks: JwksServer;
  let python: PartnerProcess;
  let node: PartnerProcess;
  const clients = {} as Record<ClientName, PartnerClient>;

  beforeAll(async () => {
    [rs256, es256, rsaOaep, ecdhEs, unpublished] = await Promise.all([rsaKey('sig', 'RS256'), ecKey('P-256'), rsaKey('enc', 'RSA-OAEP'), ecKey('P-256', 'enc'), rsaKey('sig', 'RS256')]);
    jwks = await serveJwks([rs256, es256, rsaOaep, ecdhEs].map((key) => key.jwk));
    python = startPythonPartner({ jwksUrl: jwks.url, lifespanSeconds: 300 });
    node = startJwksRsaPartner({ jwksUrl: jwks.url, lifespanMs: 300_000 });
    clients.pyjwt = { partner: python, name: 'pyjwt' };
    clients.jwcrypto = { partner: python, name: 'jwcrypto' };
    clients['jwks-rsa'] = { partner: node, name: 'jwks-rsa' };
  });
  afterAll(async () => {
    await Promise.all([python?.close(), node?.close()]);
    await jwks?.close();
  });

  it('the served keys are two sig and two enc keys whose kids are their RFC 7638 thumbprints', async () => {
    expect(jwks.keys.map(({ use, alg }) => `${use}:${alg}`)).toEqual(['sig:RS256', 'sig:ES256', 'enc:RSA-OAEP', 'enc:ECDH-ES']);
    for (const key of jwks.keys) expect(key.kid).toBe(await calculateJwkThumbprint(key, 'sha256'));
    expect(new Set(jwks.keys.map((key) => key.kid)).size).toBe(4);
  });

  it.each(clientNames)('%s verifies RS256 and ES256 tokens signed with jose', async (name) => {
    for (const signer of [rs256, es256]) {
      const answer = await succeeded(verify(clients[name], await signToken(signer, { sub: `partner-${name}`, scope: 'jwks' })));
      expect(answer.kid).toBe(signer.jwk.kid);
      expect(answer.claims).toMatchObject({ sub: `partner-${name}`, scope: 'jwks', iss: 'https://bank.example/issuer' });
    }
  });

  it.each(clientNames)('%s rejects a token whose kid is not published', async (name) => {
    expect(await failed(verify(clients[name], await signToken(unpublished)))).toMatch(unknownKidError[name]);
  });

  it.each(clientNames)('%s rejects a token signed by another key under a published kid', async (name) => {
    const forged = await signToken({ jwk: rs256.jwk, privateKey: unpublished.privateKey });
    expect(decodeProtectedHeader(forged).kid).toBe(rs256.jwk.kid);
    expect(await failed(verify(clients[name], forged))).toMatch(/signature/i);
  });

  it('load_set: PyJWT and jwks-rsa offer the sig keys only, jwcrypto loads every key', async () => {
    const sigKids = [rs256, es256].map((key) => key.jwk.kid).sort();
    const allKids = jwks.keys.map((key) => key.kid).sort();
    const pyjwt = await succeeded(loadSet(clients.pyjwt));
    expect(pyjwt.kids.sort()).toEqual(sigKids); // RSA-OAEP and ECDH-ES are no JWS algs: PyJWKSet drops them
    expect(pyjwt.signing_kids?.sort()).toEqual(sigKids);
    expect((await succeeded(loadSet(clients.jwcrypto))).kids.sort()).toEqual(allKids);
    expect((await succeeded(loadSet(clients['jwks-rsa']))).kids.sort()).toEqual(sigKids);
  });

  it.each([
    ['RSA-OAEP', () => rsaOaep],
    ['ECDH-ES', () => ecdhEs],
  ])('jwcrypto encrypts to the published %s key and the private key decrypts it', async (alg, key) => {
    const plaintext = new TextEncoder().encode(`secret for ${alg}: ${'é'.repeat(40)}`);
    const { jwe } = await succeeded(encrypt(clients.jwcrypto, { kid: key().jwk.kid, plaintext }));
    const { plaintext: recovered, protectedHeader } = await compactDecrypt(jwe, key().privateKey);
    const { epk, ...header } = protectedHeader;
    expect(header).toEqual({ alg, enc: 'A256GCM', kid: key().jwk.kid });
    expect(epk === undefined ? undefined : (epk as { kty?: string }).kty).toBe(alg === 'ECDH-ES' ? 'EC' : undefined);
    expect(Buffer.from(recovered).equals(Buffer.from(plaintext))).toBe(true);
  });

  it('jwcrypto refuses to encrypt to a signing key or an unknown kid', async () => {
    const plaintext = new Uint8Array([1, 2, 3]);
    expect(await failed(encrypt(clients.jwcrypto, { kid: rs256.jwk.kid, plaintext }))).toMatch(/has use 'sig', not "enc"/);
    expect(await failed(encrypt(clients.jwcrypto, { kid: unpublished.jwk.kid, plaintext }))).toMatch(/no key with kid/);
  });

  it('a malformed command is answered with ok:false and the partner keeps running', async () => {
    for (const { partner, name } of [clients.pyjwt, clients['jwks-rsa']]) {
      expect(await failed(partner.request({ op: 'dance' }))).toMatch(/unknown op/);
      expect(await failed(partner.request({ op: 'verify', client: name, token: 42 }))).toMatch(/"token" must be/);
      expect(await failed(partner.request({ op: 'verify', client: 'nobody', token: 'x' }))).toMatch(/"client" must be/);
      expect((await succeeded(verify({ partner, name }, await signToken(rs256)))).kid).toBe(rs256.jwk.kid);
    }
  });
});

describeIfPartners('partner client caches', () => {
  let oldKey: TestKey;
  let newKey: TestKey;
  let jwks: JwksServer | undefined;
  let client: PartnerClient | undefined;

  beforeAll(async () => {
    [oldKey, newKey] = await Promise.all([rsaKey('sig', 'RS256'), ecKey('P-256')]);
  });
  afterEach(async () => {
    await client?.partner.close();
    await jwks?.close();
    [client, jwks] = [undefined, undefined];
  });

  it.each(clientNames)('%s keeps verifying with a dropped key until its 5 s cache expires, then rejects it', async (name) => {
    jwks = await serveJwks([oldKey.jwk]);
    // 5 s, not less: the two calls right after the swap must land inside it on a loaded CI machine.
    client = startFor(name, jwks.url, 5);
    const [oldToken, newToken] = await Promise.all([signToken(oldKey), signToken(newKey)]);
    expect((await succeeded(verify(client, oldToken))).kid).toBe(oldKey.jwk.kid);
    const fetchesBeforeSwap = jwks.fetches;

    jwks.keys = [newKey.jwk]; // rotation: the new key in, the old one out
    expect((await succeeded(verify(client, oldToken))).kid).toBe(oldKey.jwk.kid);
    expect(jwks.fetches).toBe(fetchesBeforeSwap); // served from the cache, not refetched

    const current = client;
    await eventually(async () => !(await verify(current, oldToken)).ok, 15_000);
    expect(await failed(verify(client, oldToken))).toMatch(unknownKidError[name]);
    expect((await succeeded(verify(client, newToken))).kid).toBe(newKey.jwk.kid);
  });

  it.each(clientNames)('%s refetches at once for a kid it has not seen, long before its cache expires', async (name) => {
    jwks = await serveJwks([oldKey.jwk]);
    client = startFor(name, jwks.url, 300);
    await succeeded(verify(client, await signToken(oldKey)));
    jwks.keys = [oldKey.jwk, newKey.jwk];
    expect((await succeeded(verify(client, await signToken(newKey)))).kid).toBe(newKey.jwk.kid);
  });

  it('close() ends the partner processes, and a closed partner refuses requests', async () => {
    jwks = await serveJwks([oldKey.jwk]);
    for (const name of ['pyjwt', 'jwks-rsa'] as const) {
      const partner = startFor(name, jwks.url, 300).partner;
      await succeeded(partner.request({ op: 'load_set', client: name }));
      await partner.close();
      expect(() => process.kill(partner.pid!, 0)).toThrow(/ESRCH/);
      await expect(partner.request({ op: 'load_set', client: name })).rejects.toThrow(/exited \(code 0/);
    }
  });
});

describeIfPartners('partner clients against a JWKS whose keys carry certificate chains (x5c)', () => {
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  let chained: TestKey[];
  let wrongChain: TestKey;
  let jwks: JwksServer;
  let python: PartnerProcess;
  let node: PartnerProcess;
  const clients = {} as Record<ClientName, PartnerClient>;

  /** The key's JWK with x5c (leaf, issuing CA) and x5t#S256, as the publisher publishes it; `leafFor` another key to plant a wrong one. */
  async function withChain(key: TestKey, leafFor: TestKey = key): Promise<TestKey> {
    const leaf = await certificateFor(ca, publicKeyObject(leafFor.jwk));
    const x5c = [derOf(leaf), derOf(ca.issuingPem)];
    return { ...key, jwk: { ...key.jwk, x5c, 'x5t#S256': createHash('sha256').update(Buffer.from(x5c[0]!, 'base64')).digest('base64url') } };
  }

  beforeAll(async () => {
    ca = await testAuthority();
    const bare = await Promise.all([rsaKey('sig', 'RS256'), ecKey('P-256'), ecKey('P-384'), ecKey('P-521'), rsaKey('sig', 'PS256')]);
    chained = await Promise.all(bare.map((key) => withChain(key)));
    const [victim, other] = await Promise.all([rsaKey('sig', 'RS256'), rsaKey('sig', 'RS256')]);
    wrongChain = await withChain(victim, other);
    jwks = await serveJwks([...chained, wrongChain].map((key) => key.jwk));
    python = startPythonPartner({ jwksUrl: jwks.url, lifespanSeconds: 300 });
    node = startJwksRsaPartner({ jwksUrl: jwks.url, lifespanMs: 300_000 });
    clients.pyjwt = { partner: python, name: 'pyjwt' };
    clients.jwcrypto = { partner: python, name: 'jwcrypto' };
    clients['jwks-rsa'] = { partner: node, name: 'jwks-rsa' };
  }, 60_000);
  afterAll(async () => {
    await Promise.all([python?.close(), node?.close()]);
    await jwks?.close();
    await ca?.remove();
  });

  it.each(clientNames)('%s verifies RS256, ES256/384/512 and PS256 tokens of keys published with their chain', async (name) => {
    for (const key of chained) {
      const answer = await succeeded(verify(clients[name], await signToken(key)));
      expect(answer.kid).toBe(key.jwk.kid);
    }
  });

  it("jose's importX509 reads each x5c[0] into the very key the JWK carries, and verifies with it", async () => {
    for (const key of chained) {
      const pem = `-----BEGIN CERTIFICATE-----\n${key.jwk.x5c![0]}\n-----END CERTIFICATE-----`;
      const fromCertificate = await importX509(pem, key.jwk.alg);
      const { payload } = await jwtVerify(await signToken(key), fromCertificate);
      expect(payload.sub).toBe('partner-test');
    }
  });

  it('a wrong chain passes unnoticed in clients that read n/e, misleads those that read x5c, and is refused by the validator', async () => {
    // jwks-rsa 4 (jose.importJWK), PyJWT and jwcrypto build the key from n/e and ignore x5c
    // (jwks-rsa 1.x and 2.x read x5c[0] first); a partner that takes the key from the certificate
    // (jose importX509, a PKI-based check) verifies against another key and fails.
    for (const name of clientNames) expect((await succeeded(verify(clients[name], await signToken(wrongChain)))).kid).toBe(wrongChain.jwk.kid);
    const fromCertificate = await importX509(`-----BEGIN CERTIFICATE-----\n${wrongChain.jwk.x5c![0]}\n-----END CERTIFICATE-----`, 'RS256');
    await expect(jwtVerify(await signToken(wrongChain), fromCertificate)).rejects.toThrow(/signature verification failed/);
    expect(() => validateKeySet(Buffer.from(JSON.stringify({ keys: [wrongChain.jwk] })))).toThrow(/x5c\[0\] whose public key/);
  });
});
