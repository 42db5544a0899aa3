/**
 * Issue 7: no log line ever holds a token, a password or private key material. The scanner
 * (test/support/log-secrets.ts) is checked first; then every process is driven through the paths
 * where a secret could slip into a log (failed and refused logins, expired and revoked tokens,
 * CM errors and timeouts, private key material in CM and in the store) at debug level, and
 * everything it wrote is scanned.
 */
import { generateKeyPairSync } from 'node:crypto';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { call } from '../emulator/support.js';
import { capturingLogger } from '../support/capture.js';
import { eventually, rawRequest } from '../support/http.js';
import { privateJwk, rsaKey } from '../support/keys.js';
import { credentialValues, expectNoSecretsInLogs, findSecretsInLogs } from '../support/log-secrets.js';
import { runRefresh, startFunction, type RunningFunction } from '../support/processes.js';
import { PUBLISHER_PASSWORD, PUBLISHER_USER, publisherEnv, startPublisherStack, waitForFirstCycle, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqd2tzLXB1Ymxpc2hlciJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('the log scanner', () => {
  it.each([
    ['the password as is', '{"msg":"login as jwks-publisher with Publisher-Pa55word-never-logged"}', 'secret #1'],
    ['the password JSON-escaped', JSON.stringify({ body: JSON.stringify({ password: 'pa"ss\\word' }) }), 'secret #2'],
    ['the password URL-encoded', '{"url":"https://cm/api?password=pa%22ss%5Cword"}', 'secret #2'],
    ['a JWT', `{"msg":"token ${JWT}"}`, 'JWT'],
    ['a bearer credential', '{"headers":{"authorization":"Bearer 0123456789abcdef"}}', 'Authorization credential'],
    ['a basic credential', '{"headers":{"authorization":"Basic YWRtaW46YWRtaW4="}}', 'Authorization credential'],
    ['a PEM private key', '{"pem":"-----BEGIN EC PRIVATE KEY-----\\nMHcC..."}', 'PEM private key'],
    ...['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'].map((member) => [`the private JWK member "${member}"`, `{"key":{"kty":"RSA","${member}":"AQAB"}}`, `private JWK member "${member}"`]),
    ['a private member inside a logged JSON string', JSON.stringify({ detail: '{"kty":"EC","d":"secret"}' }), 'private JWK member "d"'],
  ])('finds %s', (_case, line, what) => {
    const findings = findSecretsInLogs(`{"msg":"clean"}\n${line}\n`, { secrets: ['Publisher-Pa55word-never-logged', 'pa"ss\\word'] });
    expect(findings.map((finding) => finding.line)).toContain(2);
    expect(findings.map((finding) => finding.what).join(' | ')).toContain(what);
  });

  it('finds nothing in what the functions legitimately log about keys and secrets', () => {
    const { logger, text } = capturingLogger('key-rotated');
    logger.error({ event: 'security', securityEvent: 'private_key_material_in_store', object: 'jwks.json', member: 'd' }, 'refused: a key holds private material');
    logger.warn({ event: 'key_skipped', reason: 'private_key_material', kid: 'Xq3k' }, 'the publickey field holds a PRIVATE KEY block');
    logger.info({ event: 'starting', grant: 'password', sharedSecret: true, keys: 3, kid: 'abc', kty: 'RSA', use: 'sig' }, 'key-rotated starting');
    logger.warn({ event: 'event_unauthorized' }, 'event without the shared secret refused (Authorization: Bearer <secret>)');
    expect(findSecretsInLogs(text(), { secrets: ['Publisher-Pa55word-never-logged', undefined, ''] })).toEqual([]);
  });

  it('accepts parsed records, and refuses to pass a capture that holds no line', () => {
    expect(findSecretsInLogs([{ msg: 'x', jwk: { kty: 'oct', k: 'c2VjcmV0' } }])).toEqual([{ line: 1, what: 'private JWK member "k"' }]);
    expect(() => expectNoSecretsInLogs('')).toThrow(/no log line/);
    expect(() => expectNoSecretsInLogs(`{"token":"${JWT}"}`)).toThrow(/1 secret\(s\) in 1 log lines:\n {2}line 1: JWT/);
  });

  it('takes the credential values from an environment', () => {
    const env = { CIPHERTRUST_PASSWORD: 'pw', CIPHERTRUST_REFRESH_TOKEN: 'rt', KEY_ROTATED_SHARED_SECRET: 'ss', AWS_SECRET_ACCESS_KEY: 'ak', CIPHERTRUST_CLIENT_KEY_FILE: '/k.pem', CIPHERTRUST_URL: 'https://cm', EMPTY_TOKEN: '' };
    expect(credentialValues(env).sort()).toEqual(['ak', 'pw', 'rt', 'ss']);
  });
});

describe('no process logs a secret', () => {
  let stack: PublisherStack;
  let refreshToken: string;
  const extra: RunningFunction[] = [];

  beforeAll(async () => {
    stack = await startPublisherStack('file', { env: { CIPHERTRUST_RETRY_BUDGET_MS: '1500' } });
    stack.emulator.keys.create({ name: 'signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { jwks: 'publish' } });
    // A CM object whose publickey field holds a private key: the publisher must skip it silently.
    const leaky = stack.emulator.keys.create({ name: 'leaky', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { jwks: 'publish' } });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    stack.emulator.keys.setPublicKeyPem(leaky.id, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const login = await call(stack.emulator, 'POST', '/api/v1/auth/tokens', { body: { grant_type: 'password', username: PUBLISHER_USER, password: PUBLISHER_PASSWORD } });
    refreshToken = (login.json as { refresh_token: string }).refresh_token;
  });
  afterAll(async () => {
    for (const fn of extra) await fn.stop();
    await stack?.close();
  });

  /** Every secret of this suite: the CM password, the refresh token, a wrong password tried. */
  const secrets = (): string[] => [...credentialValues(stack.env), refreshToken, 'Wrong-Pa55word-also-never-logged'];

  it('key-rotated with a password: CM errors, timeouts, revoked and expired tokens', async () => {
    expect((await stack.ping()).status).toBe(200);
    stack.emulator.faults.failNext({ endpoint: 'list', status: 503, count: 5 });
    expect((await stack.ping()).status).toBe(502);
    stack.emulator.faults.revokeAllTokens();
    expect((await stack.ping()).status).toBe(200);
    stack.emulator.faults.hangNext({ endpoint: 'list', count: 3 });
    expect((await stack.ping()).status).toBe(502);
    stack.emulator.faults.failNext({ endpoint: 'auth', status: 500, count: 5 });
    stack.emulator.faults.revokeAllTokens();
    expect((await stack.ping()).status).toBe(502);
    stack.emulator.faults.clear();
    expect((await stack.ping()).status).toBe(200);
    const output = stack.keyRotated.output();
    // The private key in CM was met and reported (so the scan covers that path too).
    expect(output).toContain('private_key_material');
    expectNoSecretsInLogs(output, { secrets: secrets() });
  });

  it('key-rotated with a refresh token, and with a wrong password', async () => {
    const withRefresh = await startFunction({
      host: 'lean',
      target: 'key-rotated',
      env: publisherEnv(stack.emulator, stack.backend, { CIPHERTRUST_USERNAME: '', CIPHERTRUST_PASSWORD: '', CIPHERTRUST_REFRESH_TOKEN: refreshToken, CIPHERTRUST_RETRY_BUDGET_MS: '1500' }),
    });
    extra.push(withRefresh);
    await waitForFirstCycle(withRefresh.url);
    stack.emulator.faults.revokeAllTokens();
    expect((await ping(withRefresh)).status).toBe(200);
    stack.emulator.faults.failNext({ endpoint: 'auth', status: 401, count: 5 });
    stack.emulator.faults.revokeAllTokens();
    expect((await ping(withRefresh)).status).toBe(502);
    stack.emulator.faults.clear();

    const wrong = await startFunction({
      host: 'lean',
      target: 'key-rotated',
      env: publisherEnv(stack.emulator, stack.backend, { CIPHERTRUST_PASSWORD: 'Wrong-Pa55word-also-never-logged' }),
    });
    extra.push(wrong);
    await waitForFirstCycle(wrong.url);
    expect((await ping(wrong)).status).toBe(502);
    for (const fn of [withRefresh, wrong]) expectNoSecretsInLogs(fn.output(), { secrets: secrets() });
  });

  it('jwks-refresh failing against CM', async () => {
    stack.emulator.faults.failNext({ endpoint: 'list', status: 500, count: 5 });
    const failed = await runRefresh([], { ...stack.env, CIPHERTRUST_RETRY_BUDGET_MS: '0' });
    stack.emulator.faults.clear();
    expect(failed.code).not.toBe(0);
    expectNoSecretsInLogs(failed.stdout + failed.stderr, { secrets: secrets() });
  });

  it('jwks-get and jwk-get given a stored set that holds private members', async () => {
    const env = { ...stack.backend.env, JWKS_REVALIDATE_MS: '100', LOG_LEVEL: 'debug' };
    const serving = [await startFunction({ host: 'lean', target: 'jwks-get', env }), await startFunction({ host: 'lean', target: 'jwk-get', env })];
    extra.push(...serving);
    const leaked = { keys: [privateJwk(await rsaKey('sig'))] };
    await stack.backend.store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify(leaked)));
    for (const fn of serving) {
      await eventually(() => Promise.resolve(fn.output().includes('private_key_material_in_store')), 10_000);
      expect((await rawRequest(fn.url, '/healthz')).status).toBe(200);
      expectNoSecretsInLogs(fn.output(), { secrets: secrets() });
    }
  });
});

function ping(fn: RunningFunction): ReturnType<typeof rawRequest> {
  return rawRequest(fn.url, '/', {
    method: 'POST',
    headers: { 'ce-specversion': '1.0', 'ce-id': `tick-${Math.random()}`, 'ce-source': '/log-secrets', 'ce-type': 'dev.knative.sources.ping' },
  });
}
