/**
 * The emulator's logins as CM does them (issue 13; docs/research/ciphertrust-api.md, Logins):
 * users scoped to the domain they were created in, refresh tokens counted, revoked for good when
 * presented for another domain, expiring when told to, revocable by their holder; client_credential
 * for registered clients only, without `domain` and without a refresh token.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { ManualClock, call, login, startTestEmulator, type TestEmulator } from './support.js';

const TOKENS = '/api/v1/auth/tokens';
const REVOKE = '/api/v1/auth/revoke';
const KEYS = '/api/v1/vault/keys2';
const INVALID_PARAM = { code: 9, codeDesc: expect.stringMatching(/^NCERRInvalidParamValue/) as unknown };
const UNAUTHORIZED = { code: 5, codeDesc: 'NCERRUnauthorizedAccess' };

interface TokenAnswer {
  jwt: string;
  client_id: string;
  refresh_token?: string;
  refresh_token_id?: string;
}

describe('emulator logins', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  beforeAll(async () => {
    emulator = await startTestEmulator({
      users: { admin: 'admin', carol: { password: 'c4rol', authDomain: 'partners', domains: ['audit'] } },
      now: clock.now,
    });
  });
  afterAll(() => emulator.stop());

  const password = async (body: Record<string, unknown>): Promise<TokenAnswer> => {
    const response = await call(emulator, 'POST', TOKENS, { body: { grant_type: 'password', ...body } });
    if (response.status !== 200) throw new Error(`login failed: ${response.status} ${response.text}`);
    return response.json as unknown as TokenAnswer;
  };
  const refresh = (body: Record<string, unknown>) => call(emulator, 'POST', TOKENS, { body: { grant_type: 'refresh_token', ...body } });

  describe('users and domains', () => {
    test('a user logs in only in the domain it was created in (auth_domain), and works in its member domains', async () => {
      const wrongAuthDomain = await call(emulator, 'POST', TOKENS, { body: { username: 'carol', password: 'c4rol' } });
      expect(wrongAuthDomain.status).toBe(401);
      expect(wrongAuthDomain.json).toMatchObject({ ...UNAUTHORIZED, message: 'Wrong username or password.' });

      const home = await password({ username: 'carol', password: 'c4rol', auth_domain: 'partners' });
      expect(decodeJwt(home.jwt)).toMatchObject({ sub: 'local|carol', cust: { domain: 'partners' } });
      const audit = await password({ username: 'carol', password: 'c4rol', auth_domain: 'partners', domain: 'audit' });
      expect(decodeJwt(audit.jwt)).toMatchObject({ cust: { domain: 'audit' } });

      const foreign = await call(emulator, 'POST', TOKENS, { body: { username: 'carol', password: 'c4rol', auth_domain: 'partners', domain: 'root' } });
      expect(foreign.status).toBe(401);
      expect(foreign.json).toMatchObject(UNAUTHORIZED);
      // A root user named in another auth domain does not exist there.
      expect((await call(emulator, 'POST', TOKENS, { body: { username: 'admin', password: 'admin', auth_domain: 'partners' } })).status).toBe(401);
    });
  });

  describe('refresh tokens', () => {
    test('are counted: one per password login, none for a refresh, one for a renewal; listed without the token', async () => {
      const before = emulator.logins.refreshTokensIssued;
      const first = await password({ username: 'admin', password: 'admin' });
      expect(emulator.logins.refreshTokensIssued).toBe(before + 1);
      for (let i = 0; i < 3; i++) expect((await refresh({ refresh_token: first.refresh_token })).status).toBe(200);
      expect(emulator.logins.refreshTokensIssued).toBe(before + 1);
      expect((await refresh({ refresh_token: first.refresh_token, renew_refresh_token: true })).status).toBe(200);
      expect(emulator.logins.refreshTokensIssued).toBe(before + 2);

      const jwt = await login(emulator);
      const listed = await call(emulator, 'GET', '/emulator/v1/refresh-tokens', { token: jwt });
      expect(listed.status).toBe(200);
      expect(listed.json.issued).toBe(emulator.logins.refreshTokensIssued);
      expect(listed.json.resources).toContainEqual(expect.objectContaining({ id: first.refresh_token_id, username: 'admin', domain: 'root', clientId: first.client_id, revoked: true }));
      expect(listed.text).not.toContain(first.refresh_token);
      expect((await call(emulator, 'GET', '/emulator/v1/refresh-tokens')).status).toBe(401);
    });

    test('presented with the domain it was issued for, it works; with another domain, it is revoked for good', async () => {
      const { refresh_token: token } = await password({ username: 'carol', password: 'c4rol', auth_domain: 'partners' });
      expect((await refresh({ refresh_token: token, domain: 'partners' })).status).toBe(200);
      const elsewhere = await refresh({ refresh_token: token, domain: 'audit' });
      expect(elsewhere.status).toBe(401);
      expect(elsewhere.json).toMatchObject(UNAUTHORIZED);
      // Revoked, not merely refused: the right domain, or none, no longer helps.
      expect((await refresh({ refresh_token: token, domain: 'partners' })).status).toBe(401);
      expect((await refresh({ refresh_token: token })).status).toBe(401);
    });

    test('never expire by default, expire after refresh_token_lifetime minutes when a login asks', async () => {
      const forever = await password({ username: 'admin', password: 'admin' });
      const hour = await password({ username: 'admin', password: 'admin', refresh_token_lifetime: 60 });
      clock.advance(59 * 60);
      expect((await refresh({ refresh_token: hour.refresh_token })).status).toBe(200);
      clock.advance(60);
      const expired = await refresh({ refresh_token: hour.refresh_token });
      expect(expired.status).toBe(401);
      expect(expired.json).toMatchObject(UNAUTHORIZED);
      clock.advance(365 * 24 * 3600);
      expect((await refresh({ refresh_token: forever.refresh_token })).status).toBe(200);
      const bad = await call(emulator, 'POST', TOKENS, { body: { username: 'admin', password: 'admin', refresh_token_lifetime: -5 } });
      expect(bad.status).toBe(400);
    });

    test('expire after the emulator-wide lifetime when one is configured', async () => {
      const short = await startTestEmulator({ refreshTokenLifetimeMinutes: 10, now: clock.now });
      try {
        const answer = (await call(short, 'POST', TOKENS, { body: { username: 'admin', password: 'admin' } })).json as unknown as TokenAnswer;
        clock.advance(9 * 60);
        expect((await call(short, 'POST', TOKENS, { body: { grant_type: 'refresh_token', refresh_token: answer.refresh_token } })).status).toBe(200);
        clock.advance(60);
        expect((await call(short, 'POST', TOKENS, { body: { grant_type: 'refresh_token', refresh_token: answer.refresh_token } })).status).toBe(401);
        expect(short.logins.listRefreshTokens()).toEqual([expect.objectContaining({ expired: true, revoked: false })]);
      } finally {
        await short.stop();
      }
    });

    test('the holder revokes its refresh token with its client_id (or its password), no bearer needed', async () => {
      const held = await password({ username: 'admin', password: 'admin' });
      expect((await call(emulator, 'POST', REVOKE, { body: { token: held.refresh_token } })).status).toBe(400);
      const wrongClient = await call(emulator, 'POST', REVOKE, { body: { token: held.refresh_token, client_id: 'someone-else' } });
      expect(wrongClient.status).toBe(401);
      expect(wrongClient.json).toMatchObject({ ...UNAUTHORIZED, message: 'Invalid Client' });
      expect((await refresh({ refresh_token: held.refresh_token })).status).toBe(200);

      const revoked = await call(emulator, 'POST', REVOKE, { body: { token: held.refresh_token, client_id: held.client_id } });
      expect(revoked.status).toBe(200);
      expect((await refresh({ refresh_token: held.refresh_token })).status).toBe(401);
      expect(emulator.logins.listRefreshTokens().find((token) => token.id === held.refresh_token_id)).toMatchObject({ revoked: true });
      // Again: nothing left to do, still a success.
      expect((await call(emulator, 'POST', REVOKE, { body: { token: held.refresh_token, client_id: held.client_id } })).status).toBe(200);

      const other = await password({ username: 'carol', password: 'c4rol', auth_domain: 'partners' });
      expect((await call(emulator, 'POST', REVOKE, { body: { token: other.refresh_token, username: 'carol', password: 'wrong' } })).status).toBe(401);
      expect((await call(emulator, 'POST', REVOKE, { body: { token: other.refresh_token, username: 'carol', password: 'c4rol' } })).status).toBe(200);
      expect((await refresh({ refresh_token: other.refresh_token })).status).toBe(401);

      const unknown = await call(emulator, 'POST', REVOKE, { body: { token: 'never-issued', client_id: held.client_id } });
      expect(unknown.status).toBe(404);
    });
  });

  describe('client_credential', () => {
    test('needs client_id, refuses domain, and answers a JWT without a refresh token', async () => {
      const certificate = await emulator.issueClientCertificate('jwks-client');
      const clientId = emulator.logins.registerClient({ commonName: 'jwks-client', domain: 'partners' });
      const before = emulator.logins.refreshTokensIssued;

      const noClientId = await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential' }, clientCert: certificate });
      expect(noClientId.status).toBe(400);
      expect(noClientId.json).toMatchObject({ ...INVALID_PARAM, message: 'client_id is required with the client_credential grant' });
      const withDomain = await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: clientId, domain: 'partners' }, clientCert: certificate });
      expect(withDomain.status).toBe(400);
      expect(withDomain.json).toMatchObject({ ...INVALID_PARAM, message: 'domain is not supported with the client_credential grant' });

      const accepted = await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: clientId }, clientCert: certificate });
      expect(accepted.status).toBe(200);
      expect(Object.keys(accepted.json).sort()).toEqual(['client_id', 'duration', 'jwt', 'token_type']);
      expect(accepted.json.client_id).toBe(clientId);
      expect(decodeJwt(accepted.json.jwt as string)).toMatchObject({ sub: `client|${clientId}`, cust: { domain: 'partners' } });
      expect((await call(emulator, 'GET', KEYS, { token: accepted.json.jwt as string })).status).toBe(200);
      expect(emulator.logins.refreshTokensIssued).toBe(before);
    });

    test('a client_id is bound to its certificate: an unknown id or another certificate is an Invalid Client', async () => {
      // Copied: issuing 'bound-client' again below overwrites the emulator's files for that CN.
      const issued = await emulator.issueClientCertificate('bound-client');
      const mine = { certFile: join(emulator.tlsDir, 'pinned.pem'), keyFile: join(emulator.tlsDir, 'pinned-key.pem') };
      copyFileSync(issued.certFile, mine.certFile);
      copyFileSync(issued.keyFile, mine.keyFile);
      const theirs = await emulator.issueClientCertificate('other-client');
      const byName = emulator.logins.registerClient({ commonName: 'bound-client' });
      const fingerprint = new X509Certificate(readFileSync(mine.certFile)).fingerprint256;
      const byFingerprint = emulator.logins.registerClient({ certificateFingerprint: fingerprint, clientId: 'pinned-client' });
      expect(byFingerprint).toBe('pinned-client');

      for (const [clientId, certificate] of [
        [byName, theirs],
        [byFingerprint, theirs],
        ['unregistered', mine],
      ] as const) {
        const refused = await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: clientId }, clientCert: certificate });
        expect(refused.status).toBe(401);
        expect(refused.json).toMatchObject({ ...UNAUTHORIZED, message: 'Invalid Client' });
      }
      expect((await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: byFingerprint }, clientCert: mine })).status).toBe(200);
      // A new certificate with the same CN is not the pinned one.
      const reissued = await emulator.issueClientCertificate('bound-client');
      expect((await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: byFingerprint }, clientCert: reissued })).status).toBe(401);
      expect((await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: byName }, clientCert: reissued })).status).toBe(200);
    });

    test('clients can be registered over the control API', async () => {
      const jwt = await login(emulator);
      const registered = await call(emulator, 'POST', '/emulator/v1/clients', { token: jwt, body: { common_name: 'stack-client', client_id: 'stack' } });
      expect(registered.status).toBe(201);
      expect(registered.json).toEqual({ client_id: 'stack' });
      const certificate = await emulator.issueClientCertificate('stack-client');
      expect((await call(emulator, 'POST', TOKENS, { body: { grant_type: 'client_credential', client_id: 'stack' }, clientCert: certificate })).status).toBe(200);
      expect((await call(emulator, 'POST', '/emulator/v1/clients', { token: jwt, body: {} })).status).toBe(400);
      expect((await call(emulator, 'POST', '/emulator/v1/clients', { body: { common_name: 'x' } })).status).toBe(401);
    });
  });
});
