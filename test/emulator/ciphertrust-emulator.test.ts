import { execFile } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import fetch from 'node-fetch';
import type { CmKeyResource } from '../../emulator/index.js';
import { seedDemoKeys } from '../../emulator/index.js';
import { ManualClock, call, login, startTestEmulator, type TestEmulator } from './support.js';

const NOT_FOUND = { code: 16, codeDesc: 'NCERRResourceNotFound: Resource not found' };
const KEYS = '/api/v1/vault/keys2';

describe('TLS', () => {
  let emulator: TestEmulator;
  beforeAll(async () => {
    emulator = await startTestEmulator();
  });
  afterAll(() => emulator.stop());

  test('a node:https client trusting ca.pem reaches the server; without it the certificate is refused', async () => {
    expect(emulator.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await readFile(emulator.caFile, 'utf8')).toBe(emulator.caPem);
    const trusted = await call(emulator, 'GET', KEYS);
    expect(trusted.status).toBe(401);
    await expect(call(emulator, 'GET', KEYS, { ca: null })).rejects.toMatchObject({ code: expect.stringMatching(/UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER/) as unknown });
  });

  test('node-fetch with an https.Agent trusting ca.pem works, and is refused without it', async () => {
    const token = await login(emulator);
    const response = await fetch(`${emulator.url}${KEYS}`, { headers: { Authorization: `Bearer ${token}` }, agent: new Agent({ ca: emulator.caPem }) });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ skip: 0, limit: 10, total: 0, resources: null });
    await expect(fetch(`${emulator.url}${KEYS}`, { agent: new Agent() })).rejects.toThrow(/certificate/i);
  });

  test('the server certificate also names localhost', async () => {
    const port = new URL(emulator.url).port;
    const response = await fetch(`https://localhost:${port}${KEYS}`, { agent: new Agent({ ca: emulator.caPem }) });
    expect(response.status).toBe(401);
  });

  test('private keys in the TLS directory are mode 0600', async () => {
    const client = await emulator.issueClientCertificate('perm-check');
    for (const file of [join(emulator.tlsDir, 'ca-key.pem'), join(emulator.tlsDir, 'server-key.pem'), client.keyFile]) {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    }
    expect(await readFile(client.certFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });
});

describe('authentication', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  beforeAll(async () => {
    emulator = await startTestEmulator({ users: { admin: { password: 'admin', domains: ['engineering'] }, alice: 's3cret' }, now: clock.now });
  });
  afterAll(() => emulator.stop());
  afterEach(() => emulator.faults.clear());

  const tokens = '/api/v1/auth/tokens';

  test('password grant answers the CM token shape with a 300 s JWT', async () => {
    const response = await call(emulator, 'POST', tokens, { body: { grant_type: 'password', username: 'alice', password: 's3cret' } });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({
      jwt: expect.any(String) as unknown,
      duration: 300,
      token_type: 'Bearer',
      client_id: expect.any(String) as unknown,
      refresh_token: expect.any(String) as unknown,
      refresh_token_id: expect.any(String) as unknown,
    });
    const claims = decodeJwt(response.json.jwt as string);
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(claims.iat).toBe(Math.floor(clock.now().getTime() / 1000));
    expect(claims).toMatchObject({ sub: 'local|alice', cust: { domain: 'root' } });
    expect((await call(emulator, 'GET', KEYS, { token: response.json.jwt as string })).status).toBe(200);
  });

  test('grant_type defaults to password, form encoding is accepted, and domain is carried', async () => {
    const response = await call(emulator, 'POST', tokens, {
      body: 'username=admin&password=admin&domain=engineering',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(response.status).toBe(200);
    expect(decodeJwt(response.json.jwt as string)).toMatchObject({ cust: { domain: 'engineering' } });
  });

  test('a wrong password or an unknown user is a 401 with the CM body', async () => {
    for (const body of [
      { username: 'admin', password: 'nope' },
      { username: 'mallory', password: 'admin' },
    ]) {
      const response = await call(emulator, 'POST', tokens, { body });
      expect(response.status).toBe(401);
      expect(response.json).toEqual({ code: 5, codeDesc: 'NCERRUnauthorizedAccess', message: 'Wrong username or password.', requestID: expect.any(String) as unknown });
    }
  });

  test('refresh grant returns the same refresh token unless renewal is asked; a renewed-away token is refused', async () => {
    const first = await call(emulator, 'POST', tokens, { body: { username: 'admin', password: 'admin' } });
    const refreshToken = first.json.refresh_token as string;
    const refreshed = await call(emulator, 'POST', tokens, { body: { grant_type: 'refresh_token', refresh_token: refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.refresh_token).toBe(refreshToken);
    expect(refreshed.json.client_id).toBe(first.json.client_id);
    expect(refreshed.json.jwt).not.toBe(first.json.jwt);
    expect((await call(emulator, 'GET', KEYS, { token: refreshed.json.jwt as string })).status).toBe(200);

    const renewed = await call(emulator, 'POST', tokens, { body: { grant_type: 'refresh_token', refresh_token: refreshToken, renew_refresh_token: true } });
    expect(renewed.status).toBe(200);
    expect(renewed.json.refresh_token).not.toBe(refreshToken);
    const stale = await call(emulator, 'POST', tokens, { body: { grant_type: 'refresh_token', refresh_token: refreshToken } });
    expect(stale.status).toBe(401);
    expect(stale.json).toMatchObject({ code: 5, codeDesc: 'NCERRUnauthorizedAccess' });
    const bogus = await call(emulator, 'POST', tokens, { body: { grant_type: 'refresh_token', refresh_token: 'made-up' } });
    expect(bogus.status).toBe(401);
  });

  test('client_credential needs a client certificate from the emulator CA', async () => {
    const clientId = emulator.logins.registerClient({ commonName: 'publisher-service' });
    const body = { grant_type: 'client_credential', client_id: clientId };
    const refused = await call(emulator, 'POST', tokens, { body });
    expect(refused.status).toBe(401);
    expect(refused.json).toMatchObject({ code: 5, codeDesc: 'NCERRUnauthorizedAccess' });

    const certificate = await emulator.issueClientCertificate('publisher-service');
    const accepted = await call(emulator, 'POST', tokens, { body, clientCert: certificate });
    expect(accepted.status).toBe(200);
    expect(decodeJwt(accepted.json.jwt as string)).toMatchObject({ sub: `client|${clientId}`, preferred_username: 'publisher-service', client_id: clientId });
    expect((await call(emulator, 'GET', KEYS, { token: accepted.json.jwt as string })).status).toBe(200);

    // A certificate from another CA is presented but not trusted.
    const foreignKey = join(emulator.tlsDir, 'foreign-key.pem');
    const foreignCert = join(emulator.tlsDir, 'foreign.pem');
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', foreignKey, '-out', foreignCert, '-subj', '/CN=intruder', '-days', '1']);
    const foreign = await call(emulator, 'POST', tokens, { body, clientCert: { certFile: foreignCert, keyFile: foreignKey } });
    expect(foreign.status).toBe(401);
  });

  test('an unknown grant type is a 400', async () => {
    const response = await call(emulator, 'POST', tokens, { body: { grant_type: 'magic' } });
    expect(response.status).toBe(400);
    expect(response.json.codeDesc).toMatch(/^NCERRInvalidParamValue/);
  });

  test('missing, garbage, expired and revoked tokens are 401 with the CM body', async () => {
    const missing = await call(emulator, 'GET', KEYS);
    expect(missing.status).toBe(401);
    expect(missing.json).toMatchObject({ code: 5, codeDesc: 'NCERRUnauthorizedAccess', requestID: expect.any(String) as unknown });
    expect((await call(emulator, 'GET', KEYS, { token: 'not.a.jwt' })).status).toBe(401);

    emulator.faults.setTokenDuration(60);
    const shortLived = await login(emulator);
    const claims = decodeJwt(shortLived);
    expect(claims.exp! - claims.iat!).toBe(60);
    expect((await call(emulator, 'GET', KEYS, { token: shortLived })).status).toBe(200);
    clock.advance(59);
    expect((await call(emulator, 'GET', KEYS, { token: shortLived })).status).toBe(200);
    clock.advance(1);
    const expired = await call(emulator, 'GET', KEYS, { token: shortLived });
    expect(expired.status).toBe(401);
    expect(expired.json).toMatchObject({ code: 5, codeDesc: 'NCERRUnauthorizedAccess', message: 'Token is expired' });

    const before = await login(emulator);
    emulator.faults.revokeAllTokens();
    const revoked = await call(emulator, 'GET', KEYS, { token: before });
    expect(revoked.status).toBe(401);
    expect(revoked.json.codeDesc).toBe('NCERRUnauthorizedAccess');
    expect((await call(emulator, 'GET', KEYS, { token: await login(emulator) })).status).toBe(200);
  });
});

describe('listing keys', () => {
  let emulator: TestEmulator;
  let token: string;
  let rsa: CmKeyResource;
  beforeAll(async () => {
    emulator = await startTestEmulator({ maxPageSize: 20 });
    token = await login(emulator);
    for (let index = 0; index < 22; index += 1) emulator.keys.create({ name: `aes-${index}`, algorithm: 'aes', labels: { team: index % 2 === 0 ? 'even' : 'odd' } });
    rsa = emulator.keys.create({ name: 'rsa-pub', algorithm: 'rsa', size: 2048, labels: { jwks: 'publish', team: 'even' } });
    emulator.keys.create({ name: 'ec-pub', algorithm: 'ec', labels: { jwks: 'publish', team: 'odd' } });
    const pre = emulator.keys.create({ name: 'ec-pre', algorithm: 'ec', state: 'Pre-Active', labels: { jwks: 'publish' } });
    expect(pre.state).toBe('Pre-Active');
  });
  afterAll(() => emulator.stop());

  const list = async (query: string): Promise<{ skip: number; limit: number; total: number; resources: CmKeyResource[] }> => {
    const response = await call(emulator, 'GET', `${KEYS}${query}`, { token });
    expect(response.status).toBe(200);
    return response.json as { skip: number; limit: number; total: number; resources: CmKeyResource[] };
  };

  test('pages by skip/limit with a default page of 10 and a stable order', async () => {
    const first = await list('');
    expect(first).toMatchObject({ skip: 0, limit: 10, total: 25 });
    expect(first.resources).toHaveLength(10);
    const pages = [first, await list('?skip=10'), await list('?skip=20')];
    expect(pages[2]!.resources).toHaveLength(5);
    const ids = pages.flatMap((page) => page.resources.map((key) => key.id));
    expect(new Set(ids).size).toBe(25);
    const expected = emulator.keys.list().map((key) => key.id);
    expect(ids).toEqual(expected);
    const sorted = [...emulator.keys.list()].sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
    expect(sorted.map((key) => key.id)).toEqual(expected);
    expect((await list('?skip=3&limit=4')).resources.map((key) => key.id)).toEqual(expected.slice(3, 7));
    // Past the end, as for an empty listing: Go's nil slice (L).
    expect((await list('?skip=100')).resources).toBeNull();
  });

  test('an empty listing answers resources null with total 0, as CM does, or [] when switched', async () => {
    expect(await list('?labels=nobody=here')).toEqual({ skip: 0, limit: 10, total: 0, resources: null });
    emulator.faults.setListingShape({ emptyResources: 'array' });
    try {
      expect(await list('?labels=nobody=here')).toEqual({ skip: 0, limit: 10, total: 0, resources: [] });
    } finally {
      emulator.faults.clear();
    }
    expect((await list('?labels=nobody=here')).resources).toBeNull();
  });

  test('query parameters CM does not know are named in messages (once each); known ones are not; switchable', async () => {
    const answer = await list('?labels=jwks=publish&bogus=1&Labels=x&bogus=2&fields=links&alias=a');
    expect(answer).toMatchObject({ total: 3, messages: ['Unknown query parameter: bogus', 'Unknown query parameter: Labels'] });
    expect(await list('?labels=jwks=publish&skip=0&limit=5&name=x&state=Active&fields=meta')).not.toHaveProperty('messages');
    emulator.faults.setListingShape({ queryMessages: false });
    try {
      expect(await list('?bogus=1')).not.toHaveProperty('messages');
    } finally {
      emulator.faults.clear();
    }
  });

  test('a CM that does not understand labels lists every key unfiltered and says so in messages', async () => {
    emulator.faults.setListingShape({ ignoredParameters: ['labels'] });
    try {
      const answer = await list('?labels=jwks=publish&limit=5');
      expect(answer).toMatchObject({ total: 25, limit: 5, messages: ['Unknown query parameter: labels'] });
    } finally {
      emulator.faults.clear();
    }
    expect(await list('?labels=jwks=publish')).toMatchObject({ total: 3 });
  });

  test('without type, a reference is inferred (a key name first), so only type=id surely means the id', async () => {
    const namedLikeAnId = emulator.keys.create({ name: rsa.id, algorithm: 'ec' });
    try {
      expect((await call(emulator, 'GET', `${KEYS}/${rsa.id}`, { token })).json.id).toBe(namedLikeAnId.id);
      expect((await call(emulator, 'GET', `${KEYS}/${rsa.id}?type=id`, { token })).json.id).toBe(rsa.id);
      expect((await call(emulator, 'GET', `${KEYS}/${namedLikeAnId.id}`, { token })).json.id).toBe(namedLikeAnId.id);
      expect((await call(emulator, 'GET', `${KEYS}/${rsa.uri}`, { token })).json.id).toBe(rsa.id);
      expect((await call(emulator, 'GET', `${KEYS}/${rsa.id}?type=slug`, { token })).status).toBe(400);
    } finally {
      emulator.keys.remove(namedLikeAnId.id);
    }
  });

  test('links and meta only when fields asks for them, in a listing and for one key', async () => {
    const plain = await list('?labels=jwks=publish');
    for (const key of plain.resources) {
      expect(key).not.toHaveProperty('links');
      expect(key).not.toHaveProperty('meta');
      expect(key).toMatchObject({ undeletable: false, neverExportable: false, unexportable: false, neverExported: true });
    }
    const both = await list('?labels=jwks=publish&fields=links,meta');
    for (const key of both.resources) expect(key).toMatchObject({ links: [], meta: { ownerId: expect.stringMatching(/^local\|/) as unknown } });
    const linksOnly = (await call(emulator, 'GET', `${KEYS}/${rsa.id}?fields=links`, { token })).json;
    expect(linksOnly).toHaveProperty('links', []);
    expect(linksOnly).not.toHaveProperty('meta');
    expect((await call(emulator, 'GET', `${KEYS}/${rsa.id}`, { token })).json).not.toHaveProperty('links');
  });

  test('a limit above the maximum is capped silently', async () => {
    const page = await list('?limit=500');
    expect(page.limit).toBe(20);
    expect(page.resources).toHaveLength(20);
    expect(page.total).toBe(25);
  });

  test('labels selector needs every label to match', async () => {
    expect((await list('?labels=jwks=publish')).resources.map((key) => key.name).sort()).toEqual(['ec-pre', 'ec-pub', 'rsa-pub']);
    expect((await list(`?labels=${encodeURIComponent('jwks=publish,team=even')}`)).resources.map((key) => key.name)).toEqual(['rsa-pub']);
    expect((await list('?labels=team=even&limit=100')).total).toBe(12);
    expect((await list('?labels=team=none')).total).toBe(0);
  });

  test('state, algorithm (case-sensitive), name and objectType filters are exact', async () => {
    expect((await list('?state=Pre-Active')).resources.map((key) => key.name)).toEqual(['ec-pre']);
    expect((await list('?algorithm=RSA')).resources.map((key) => key.name)).toEqual(['rsa-pub']);
    expect((await list('?algorithm=rsa')).total).toBe(0);
    expect((await list('?algorithm=EC&state=Active')).resources.map((key) => key.name)).toEqual(['ec-pub']);
    expect((await list('?name=aes-7')).resources.map((key) => key.name)).toEqual(['aes-7']);
    expect((await list('?objectType=Private%20Key')).total).toBe(3);
    expect((await list('?objectType=Symmetric+Key')).total).toBe(22);
  });

  test('the list omits publickey; GET by id has it', async () => {
    const listed = (await list('?name=rsa-pub')).resources[0]!;
    expect(listed.id).toBe(rsa.id);
    expect(listed).not.toHaveProperty('publickey');
    expect(listed.sha256Fingerprint).toBe(rsa.sha256Fingerprint);
    const fetched = await call(emulator, 'GET', `${KEYS}/${rsa.id}`, { token });
    expect(fetched.status).toBe(200);
    expect(fetched.json.publickey).toMatch(/^-----BEGIN RSA PUBLIC KEY-----/);
  });

  test('bad skip or limit is a 400 with a CM body', async () => {
    for (const query of ['?skip=-1', '?limit=abc', '?skip=1.5']) {
      const response = await call(emulator, 'GET', `${KEYS}${query}`, { token });
      expect(response.status).toBe(400);
      expect(response.json).toMatchObject({ code: expect.any(Number) as unknown, codeDesc: expect.stringMatching(/^NCERRInvalidParamValue/) as unknown });
    }
  });
});

describe('list options', () => {
  test('includePublicKeyInList and SPKI RSA PEMs', async () => {
    const emulator = await startTestEmulator({ includePublicKeyInList: true, rsaPublicKeyFormat: 'spki', defaultPageSize: 2 });
    try {
      const token = await login(emulator);
      const key = emulator.keys.create({ name: 'r', algorithm: 'rsa' });
      emulator.keys.create({ name: 'e', algorithm: 'ec' });
      emulator.keys.create({ name: 'a', algorithm: 'aes' });
      const page = await call(emulator, 'GET', KEYS, { token });
      expect(page.json).toMatchObject({ limit: 2, total: 3 });
      const listed = ((await call(emulator, 'GET', `${KEYS}?name=r`, { token })).json.resources as CmKeyResource[])[0]!;
      expect(listed.publickey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      expect(listed.publickey).toBe(key.publickey);
      const parsed = createPublicKey(listed.publickey!);
      expect(parsed.asymmetricKeyType).toBe('rsa');
      expect(parsed.asymmetricKeyDetails?.modulusLength).toBe(1024);
    } finally {
      await emulator.stop();
    }
  });
});

describe('keys', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  let token: string;
  beforeAll(async () => {
    emulator = await startTestEmulator({ now: clock.now });
    token = await login(emulator);
  });
  afterAll(() => emulator.stop());

  const create = (body: unknown): ReturnType<typeof call> => call(emulator, 'POST', KEYS, { token, body });
  const get = (id: string): ReturnType<typeof call> => call(emulator, 'GET', `${KEYS}/${id}`, { token });
  const post = (id: string, action: string, body: unknown = {}): ReturnType<typeof call> => call(emulator, 'POST', `${KEYS}/${id}/${action}`, { token, body });

  test('RSA create defaults to 1024 bits, PKCS#1 PEM, version 0, Active', async () => {
    const response = await create({ name: 'rsa-default', algorithm: 'RSA', usageMask: 3, labels: { jwks: 'publish' } });
    expect(response.status).toBe(201);
    const key = response.json as CmKeyResource;
    expect(key).toMatchObject({
      name: 'rsa-default',
      algorithm: 'RSA',
      size: 1024,
      usageMask: 3,
      objectType: 'Private Key',
      state: 'Active',
      version: 0,
      uri: 'kylo:kylo:vault:keys:rsa-default-v0',
      labels: { jwks: 'publish' },
      unexportable: false,
      neverExported: true,
      undeletable: false,
      neverExportable: false,
      aliases: [],
      createdAt: clock.iso(),
      updatedAt: clock.iso(),
      activationDate: clock.iso(),
    });
    expect(key.id).toMatch(/^[0-9a-f]{64}$/);
    expect(key.publickey).toMatch(/^-----BEGIN RSA PUBLIC KEY-----\n/);
    const publicKey = createPublicKey(key.publickey!);
    expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
    const der = publicKey.export({ type: 'spki', format: 'der' });
    expect(key.sha256Fingerprint).toBe(createHash('sha256').update(der).digest('hex'));
    expect(key.sha1Fingerprint).toBe(createHash('sha1').update(der).digest('hex'));
    expect((await get(key.id)).json).toEqual(key);
    expect(JSON.stringify(key)).not.toMatch(/PRIVATE KEY/);
  });

  test.each([512, 2048])('RSA %i-bit keys are real keys of that size', async (size) => {
    const response = await create({ name: `rsa-${size}`, algorithm: 'rsa', size });
    expect(response.status).toBe(201);
    expect(createPublicKey(response.json.publickey as string).asymmetricKeyDetails?.modulusLength).toBe(size);
  });

  test('EC keys default to prime256v1 and use SPKI PEMs for every curve', async () => {
    const byDefault = (await create({ name: 'ec-default', algorithm: 'ec' })).json as CmKeyResource;
    expect(byDefault.curveid).toBe('prime256v1');
    for (const curve of ['prime256v1', 'secp384r1', 'secp521r1', 'secp256k1']) {
      const key = (await create({ name: `ec-${curve}`, algorithm: 'EC', curveid: curve })).json as CmKeyResource;
      expect(key).toMatchObject({ algorithm: 'EC', curveid: curve, objectType: 'Private Key' });
      expect(key.publickey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      expect(createPublicKey(key.publickey!).asymmetricKeyDetails?.namedCurve).toBe(curve);
    }
    const edwards = (await create({ name: 'ec-25519', algorithm: 'ec', curveid: 'curve25519' })).json as CmKeyResource;
    expect(createPublicKey(edwards.publickey!).asymmetricKeyType).toBe('ed25519');
  });

  test('AES keys are Symmetric Key objects without publickey', async () => {
    const key = (await create({ name: 'aes-default', algorithm: 'aes' })).json as CmKeyResource;
    expect(key).toMatchObject({ algorithm: 'AES', size: 256, objectType: 'Symmetric Key' });
    expect(key).not.toHaveProperty('publickey');
    expect((await get(key.id)).json).not.toHaveProperty('publickey');
    expect((await create({ name: 'aes-128', algorithm: 'aes', size: 128 })).json.size).toBe(128);
  });

  test('bad parameters are 400, a duplicate name is 409 NCERRKeyAlreadyExists', async () => {
    for (const body of [
      { name: 'bad-1', algorithm: 'rsa', size: 1000 },
      { name: 'bad-2', algorithm: 'ec', curveid: 'secp999' },
      { name: 'bad-3', algorithm: 'des' },
      { name: 'bad-4', algorithm: 'aes', size: 512 },
      { algorithm: 'aes' },
      { name: 'bad-5', algorithm: 'aes', labels: ['x'] },
      { name: 'bad-6', algorithm: 'aes', activationDate: 'tomorrow' },
    ]) {
      const response = await create(body);
      expect(response.status).toBe(400);
      expect(response.json).toMatchObject({ code: expect.any(Number) as unknown, codeDesc: expect.stringMatching(/^NCERRInvalidParamValue: /) as unknown });
    }
    expect((await create({ name: 'dup', algorithm: 'aes' })).status).toBe(201);
    const duplicate = await create({ name: 'dup', algorithm: 'aes' });
    expect(duplicate.status).toBe(409);
    expect(duplicate.json).toMatchObject({ codeDesc: expect.stringMatching(/^NCERRKeyAlreadyExists/) as unknown, message: 'key with name dup already exists' });
  });

  test('unknown keys are 404 with the CM body; malformed JSON is 400; wrong method 405; unknown route 404', async () => {
    const missing = await get('0'.repeat(64));
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual(NOT_FOUND);
    expect((await post('f'.repeat(64), 'revoke', { reason: 'Unspecified' })).json).toEqual(NOT_FOUND);
    const malformed = await call(emulator, 'POST', KEYS, { token, body: '{"name":' });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ code: expect.any(Number) as unknown, codeDesc: expect.stringMatching(/^NCERR/) as unknown });
    const wrongMethod = await call(emulator, 'DELETE', KEYS, { token });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, POST');
    expect(wrongMethod.json).toMatchObject({ code: expect.any(Number) as unknown, codeDesc: expect.stringMatching(/^NCERR/) as unknown });
    const unknown = await call(emulator, 'GET', '/api/v1/nothing', { token });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual(NOT_FOUND);
    expect((await call(emulator, 'GET', `${KEYS}/${'0'.repeat(64)}/extra`, { token })).json).toEqual(NOT_FOUND);
    // Without a token, paths under /api/ answer 401 whether they exist or not.
    expect((await call(emulator, 'GET', '/api/v1/nothing')).status).toBe(401);
    expect((await call(emulator, 'DELETE', KEYS)).status).toBe(401);
    expect((await call(emulator, 'GET', '/api/v1/auth/tokens')).status).toBe(405);
    expect((await call(emulator, 'GET', '/favicon.ico')).status).toBe(404);
  });

  test('a body over 1 MiB is refused with 413', async () => {
    const response = await create({ name: 'big', algorithm: 'aes', labels: { filler: 'x'.repeat(1024 * 1024) } });
    expect(response.status).toBe(413);
    expect(response.json.codeDesc).toMatch(/^NCERR/);
  });

  test('a new version is its own object; the name addresses the latest or a given version', async () => {
    const original = (await create({ name: 'rotating', algorithm: 'ec', usageMask: 3, labels: { jwks: 'publish' } })).json as CmKeyResource;
    clock.advance(10);
    const rotated = await post(original.id, 'versions');
    expect(rotated.status).toBe(201);
    const next = rotated.json as CmKeyResource;
    expect(next).toMatchObject({ name: 'rotating', version: 1, algorithm: 'EC', curveid: 'prime256v1', usageMask: 3, labels: { jwks: 'publish' }, state: 'Active', uri: 'kylo:kylo:vault:keys:rotating-v1' });
    expect(next.id).not.toBe(original.id);
    expect(next.publickey).not.toBe(original.publickey);
    expect((await get(original.id)).json).toEqual(original);
    clock.advance(1); // the list orders by createdAt, then id
    const third = (await post(original.id, 'versions')).json as CmKeyResource;
    expect(third.version).toBe(2);

    expect((await call(emulator, 'GET', `${KEYS}/rotating?type=name`, { token })).json.id).toBe(third.id);
    expect((await call(emulator, 'GET', `${KEYS}/rotating?type=name&version=0`, { token })).json.id).toBe(original.id);
    expect((await call(emulator, 'GET', `${KEYS}/rotating?type=name&version=7`, { token })).status).toBe(404);
    const listed = await call(emulator, 'GET', `${KEYS}?name=rotating`, { token });
    expect((listed.json.resources as CmKeyResource[]).map((key) => key.version)).toEqual([0, 1, 2]);
  });

  test('revoke: compromise reasons make Compromised, the others Deactivated; unknown reasons are 400', async () => {
    const superseded = (await create({ name: 'rev-1', algorithm: 'ec' })).json as CmKeyResource;
    clock.advance(5);
    const deactivated = await post(superseded.id, 'revoke', { reason: 'Superseded', message: 'rotated' });
    expect(deactivated.status).toBe(200);
    expect(deactivated.json).toMatchObject({ state: 'Deactivated', deactivationDate: clock.iso(), revocationReason: 'Superseded', revocationMessage: 'rotated', updatedAt: clock.iso() });
    expect(deactivated.json).not.toHaveProperty('compromiseOccurrenceDate');
    expect(deactivated.json.publickey).toBe(superseded.publickey);
    expect((await post(superseded.id, 'revoke', { reason: 'Superseded' })).status).toBe(400);
    expect((await post(superseded.id, 'revoke', { reason: 'KeyCompromise', compromiseOccurrenceDate: 'yesterday' })).status).toBe(400);
    const later = await post(superseded.id, 'revoke', { reason: 'KeyCompromise', compromiseOccurrenceDate: clock.iso(-3600) });
    expect(later.json).toMatchObject({ state: 'Compromised', revocationReason: 'KeyCompromise', deactivationDate: clock.iso(), compromiseOccurrenceDate: clock.iso(-3600) });
    expect(later.json).not.toHaveProperty('revocationMessage');

    const compromised = (await create({ name: 'rev-2', algorithm: 'ec' })).json as CmKeyResource;
    const revoked = await post(compromised.id, 'revoke', { reason: 'KeyCompromise' });
    // Without a compromiseOccurrenceDate, KMIP's default: the key's creation date.
    expect(revoked.json).toMatchObject({ state: 'Compromised', compromiseDate: clock.iso(), revocationReason: 'KeyCompromise', compromiseOccurrenceDate: compromised.createdAt });
    expect(revoked.json).not.toHaveProperty('deactivationDate');

    const ca = (await create({ name: 'rev-3', algorithm: 'ec' })).json as CmKeyResource;
    expect((await post(ca.id, 'revoke', { reason: 'CACompromise' })).json.state).toBe('Compromised');
    const bad = await post(ca.id, 'revoke', { reason: 'Bored' });
    expect(bad.status).toBe(400);
    expect(bad.json.codeDesc).toMatch(/^NCERRInvalidParamValue/);
    expect((await post(ca.id, 'revoke', {})).status).toBe(400);
  });

  test('reactivate: Deactivated becomes Active again, Compromised cannot', async () => {
    const key = (await create({ name: 'react-1', algorithm: 'aes' })).json as CmKeyResource;
    await post(key.id, 'revoke', { reason: 'CessationOfOperation' });
    const active = await post(key.id, 'reactivate', { reason: 'DeactivatedToActive' });
    expect(active.status).toBe(200);
    expect(active.json.state).toBe('Active');
    expect(active.json).not.toHaveProperty('deactivationDate');
    expect(active.json).not.toHaveProperty('revocationReason');

    const compromised = (await create({ name: 'react-2', algorithm: 'aes' })).json as CmKeyResource;
    await post(compromised.id, 'revoke', { reason: 'KeyCompromise' });
    const refused = await post(compromised.id, 'reactivate', { reason: 'DeactivatedToActive' });
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ code: expect.any(Number) as unknown, codeDesc: expect.stringMatching(/^NCERR/) as unknown });
    expect((await get(compromised.id)).json.state).toBe('Compromised');
    await post(key.id, 'revoke', { reason: 'Superseded' });
    const withoutReason = await post(key.id, 'reactivate');
    expect(withoutReason.status).toBe(400);
    expect(withoutReason.json).toMatchObject({ codeDesc: expect.stringMatching(/^NCERRInvalidParamValue/) as unknown, message: 'reason is required' });
    expect((await get(key.id)).json.state).toBe('Deactivated');
    expect((await post(key.id, 'reactivate', { reason: 'Bored' })).status).toBe(400);
  });

  test('destroy: only after revocation, and the public material is gone', async () => {
    const key = (await create({ name: 'destroy-1', algorithm: 'rsa' })).json as CmKeyResource;
    const tooEarly = await post(key.id, 'destroy');
    expect(tooEarly.status).toBe(400);
    expect(tooEarly.json.codeDesc).toMatch(/^NCERR/);
    expect((await get(key.id)).json.state).toBe('Active');

    await post(key.id, 'revoke', { reason: 'Superseded' });
    const destroyed = await post(key.id, 'destroy');
    expect(destroyed.status).toBe(200);
    expect(destroyed.json).toMatchObject({ state: 'Destroyed', destroyDate: clock.iso() });
    expect(destroyed.json).not.toHaveProperty('publickey');
    expect((await get(key.id)).json).not.toHaveProperty('publickey');
    expect((await post(key.id, 'revoke', { reason: 'KeyCompromise' })).status).toBe(400);
    expect((await post(key.id, 'destroy')).status).toBe(400);

    const compromised = (await create({ name: 'destroy-2', algorithm: 'ec' })).json as CmKeyResource;
    await post(compromised.id, 'revoke', { reason: 'KeyCompromise' });
    expect((await post(compromised.id, 'destroy')).json.state).toBe('Destroyed Compromised');
  });

  test('PATCH replaces labels, sets usageMask and dates, and moves updatedAt', async () => {
    const key = (await create({ name: 'patch-1', algorithm: 'ec', labels: { a: '1', b: '2' } })).json as CmKeyResource;
    clock.advance(30);
    const patched = await call(emulator, 'PATCH', `${KEYS}/${key.id}`, { token, body: { labels: { jwks: 'publish' }, usageMask: 2 } });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ labels: { jwks: 'publish' }, usageMask: 2, updatedAt: clock.iso(), createdAt: key.createdAt });
    const invalid = await call(emulator, 'PATCH', `${KEYS}/${key.id}`, { token, body: { usageMask: -1 } });
    expect(invalid.status).toBe(400);

    const dated = await call(emulator, 'PATCH', `${KEYS}/${key.id}`, { token, body: { deactivationDate: clock.iso(60) } });
    expect(dated.json).toMatchObject({ state: 'Active', deactivationDate: clock.iso(60) });
    const byName = await call(emulator, 'PATCH', `${KEYS}/patch-1?type=name`, { token, body: { labels: {} } });
    expect(byName.json.labels).toEqual({});
    expect((await call(emulator, 'PATCH', `${KEYS}/${key.id}`, { token, body: { activationDate: clock.iso(5) } })).status).toBe(400);
  });

  test('time moves Pre-Active keys to Active and Active keys to Deactivated', async () => {
    const scheduled = (await create({ name: 'time-1', algorithm: 'ec', activationDate: clock.iso(100), deactivationDate: clock.iso(200) })).json as CmKeyResource;
    expect(scheduled.state).toBe('Pre-Active');
    const explicit = (await create({ name: 'time-2', algorithm: 'ec', state: 'Pre-Active' })).json as CmKeyResource;
    expect(explicit.state).toBe('Pre-Active');
    expect(explicit).not.toHaveProperty('activationDate');

    clock.advance(99);
    expect((await get(scheduled.id)).json.state).toBe('Pre-Active');
    clock.advance(1);
    const activated = (await get(scheduled.id)).json as CmKeyResource;
    expect(activated).toMatchObject({ state: 'Active', updatedAt: scheduled.activationDate });
    const listed = await call(emulator, 'GET', `${KEYS}?state=Active&name=time-1`, { token });
    expect(listed.json.total).toBe(1);
    clock.advance(100);
    expect((await get(scheduled.id)).json).toMatchObject({ state: 'Deactivated', updatedAt: scheduled.deactivationDate });
    expect(emulator.keys.get(explicit.id)?.state).toBe('Pre-Active');

    const patched = await call(emulator, 'PATCH', `${KEYS}/${explicit.id}`, { token, body: { activationDate: clock.iso(-1) } });
    expect(patched.json.state).toBe('Active');
  });
});

describe('programmatic keys API', () => {
  let emulator: TestEmulator;
  let token: string;
  beforeAll(async () => {
    emulator = await startTestEmulator();
    token = await login(emulator);
  });
  afterAll(() => emulator.stop());

  test('seedDemoKeys creates the publishable mix', async () => {
    const seeded = seedDemoKeys(emulator.keys);
    expect(seeded.map((key) => [key.algorithm, key.size, key.curveid, key.usageMask, key.labels.jwks])).toEqual([
      ['RSA', 2048, undefined, 3, 'publish'],
      ['EC', 256, 'prime256v1', 3, 'publish'],
      ['RSA', 2048, undefined, 12, 'publish'],
      ['AES', 256, undefined, 12, 'publish'],
      ['RSA', 2048, undefined, 3, undefined],
    ]);
    const labelled = await call(emulator, 'GET', `${KEYS}?labels=jwks=publish`, { token });
    expect(labelled.json.total).toBe(4);
  });

  test('a Public Key object duplicates another key, and the test backdoors do what they say', async () => {
    const pair = emulator.keys.create({ name: 'pair', algorithm: 'ec' });
    const half = emulator.keys.create({ name: 'pair-public', algorithm: 'ec', objectType: 'Public Key', publicKeyOf: pair.id });
    expect(half).toMatchObject({ objectType: 'Public Key', publickey: pair.publickey, sha256Fingerprint: pair.sha256Fingerprint });
    expect((await call(emulator, 'GET', `${KEYS}?objectType=Public%20Key`, { token })).json.total).toBe(1);

    expect(emulator.keys.setState(pair.id, 'Weird State').state).toBe('Weird State');
    expect((await call(emulator, 'GET', `${KEYS}/${pair.id}`, { token })).json.state).toBe('Weird State');
    emulator.keys.setPublicKeyPem(pair.id, 'garbage');
    expect((await call(emulator, 'GET', `${KEYS}/${pair.id}`, { token })).json.publickey).toBe('garbage');
    emulator.keys.setPublicKeyPem(pair.id, undefined);
    expect((await call(emulator, 'GET', `${KEYS}/${pair.id}`, { token })).json).not.toHaveProperty('publickey');
    emulator.keys.remove(pair.id);
    expect(emulator.keys.get(pair.id)).toBeUndefined();
    expect((await call(emulator, 'GET', `${KEYS}/${pair.id}`, { token })).status).toBe(404);
  });

  test('programmatic operations follow the REST rules', () => {
    const key = emulator.keys.create({ name: 'prog', algorithm: 'rsa', size: 2048 });
    expect(() => emulator.keys.destroy(key.id)).toThrow(/deactivated first/);
    expect(emulator.keys.revoke(key.id, 'Superseded').state).toBe('Deactivated');
    expect(emulator.keys.reactivate(key.id).state).toBe('Active');
    expect(emulator.keys.rotate(key.id)).toMatchObject({ name: 'prog', version: 1, size: 2048 });
    expect(emulator.keys.patch(key.id, { labels: { x: 'y' } }).labels).toEqual({ x: 'y' });
    expect(() => emulator.keys.create({ name: 'prog', algorithm: 'aes' })).toThrow(/already exists/);
    expect(() => emulator.keys.rotate('missing')).toThrow(/Resource not found/);
  });
});
