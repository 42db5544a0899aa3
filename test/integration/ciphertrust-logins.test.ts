/**
 * Issue 13, logins as CM does them: the session (shared/ciphertrust/session.ts) over the real
 * transport against the emulator, with the session's clock and the emulator's moved together.
 * One refresh token per process, not one per renewal; the password only when CM refuses the
 * refresh token; never `domain` with a refresh token; client_credential with its client_id and no
 * refresh token; auth_domain; the refresh token revoked at the end.
 */
import { CipherTrustClient } from '../../shared/ciphertrust/client.js';
import { CipherTrustSession } from '../../shared/ciphertrust/session.js';
import { CipherTrustTransport, type CipherTrustRequest, type CipherTrustResponse } from '../../shared/ciphertrust/transport.js';
import type { CipherTrustGrant } from '../../shared/config/ciphertrust-config.js';
import { ManualClock, call, startTestEmulator, type TestEmulator } from '../emulator/support.js';
import { capturingLogger } from '../support/capture.js';
import { expectNoSecretsInLogs } from '../support/log-secrets.js';

const USER = 'jwks-publisher';
const PASSWORD = 'Publisher-Pa55word-never-logged';
const PARTNER_USER = 'partner-publisher';
const PASSWORD_GRANT: CipherTrustGrant = { type: 'password', username: USER, password: PASSWORD };

/** The real transport, recording every request body (what CM was sent) on the way. */
class RecordingTransport extends CipherTrustTransport {
  readonly sent: CipherTrustRequest[] = [];
  override send(request: CipherTrustRequest): Promise<CipherTrustResponse> {
    this.sent.push(request);
    return super.send(request);
  }
  tokenRequests(): Record<string, string>[] {
    return this.sent.filter((request) => request.endpoint === 'auth_tokens').map((request) => request.body as Record<string, string>);
  }
}

describe('CipherTrust Manager logins against the emulator', () => {
  const clock = new ManualClock();
  const now = (): number => clock.now().getTime();
  let emulator: TestEmulator;
  const open: CipherTrustTransport[] = [];
  const transportOf = new WeakMap<CipherTrustSession, RecordingTransport>();

  beforeAll(async () => {
    emulator = await startTestEmulator({
      users: { [USER]: PASSWORD, [PARTNER_USER]: { password: PASSWORD, authDomain: 'partners', domains: ['audit'] } },
      now: clock.now,
    });
  });
  afterAll(async () => {
    for (const transport of open) transport.close();
    await emulator.stop();
  });
  afterEach(() => emulator.faults.clear());

  function transport(options: { clientCert?: { certPem: string; keyPem: string }; timeoutMs?: number } = {}): RecordingTransport {
    const created = new RecordingTransport({
      nodes: [emulator.url],
      caPem: emulator.caPem,
      clientCertPem: options.clientCert?.certPem,
      clientKeyPem: options.clientCert?.keyPem,
      timeoutMs: options.timeoutMs ?? 2000,
      retry: { maxAttempts: 3, budgetMs: 2000, baseDelayMs: 1, maxDelayMs: 5 },
      maxSockets: 4,
    });
    open.push(created);
    return created;
  }

  function session(grant: CipherTrustGrant = PASSWORD_GRANT, domain?: string, over = transport()) {
    const log = capturingLogger('logins');
    const created = new CipherTrustSession(over, grant, domain, now, log.logger);
    transportOf.set(created, over);
    return { session: created, client: new CipherTrustClient(over, created), transport: over, log };
  }

  /** Refresh tokens the emulator issued during `run`. */
  async function issuedDuring(run: () => Promise<void>): Promise<number> {
    const before = emulator.logins.refreshTokensIssued;
    await run();
    return emulator.logins.refreshTokensIssued - before;
  }

  const renewalDue = (): void => clock.advance(241);

  it('a day of renewals every four minutes creates one refresh token in CM, not one per renewal', async () => {
    const { client, transport: sent, log } = session();
    const issued = await issuedDuring(async () => {
      // 24 h of publication cycles, each after the JWT's renewal point (80% of 300 s).
      for (let minute = 0; minute < 24 * 60; minute += 4) {
        await client.listKeys('jwks=publish', 100);
        clock.advance(240);
      }
    });
    expect(issued).toBe(1);
    const grants = sent.tokenRequests().map((body) => body.grant_type);
    expect(grants.filter((grant) => grant === 'password')).toHaveLength(1);
    expect(grants.filter((grant) => grant === 'refresh_token')).toHaveLength(359);
    // Renewals carry the refresh token alone: no domain, no auth_domain, no renewal of the token.
    for (const body of sent.tokenRequests().filter((request) => request.grant_type === 'refresh_token')) {
      expect(Object.keys(body).sort()).toEqual(['grant_type', 'refresh_token']);
    }
    expect(log.lines().filter((line) => line.event === 'ciphertrust_login')).toHaveLength(1);
    expectNoSecretsInLogs(log.text(), { secrets: [PASSWORD] });
  });

  it('a JWT CM revoked early (401) is replaced through the refresh token, not the password', async () => {
    const { client, transport: sent } = session();
    const issued = await issuedDuring(async () => {
      await client.listKeys('jwks=publish', 100);
      emulator.faults.revokeAllTokens();
      await client.listKeys('jwks=publish', 100);
    });
    expect(issued).toBe(1);
    expect(sent.tokenRequests().map((body) => body.grant_type)).toEqual(['password', 'refresh_token']);
  });

  it('falls back to one password login when CM refuses the refresh token (revoked), and logs it without secrets', async () => {
    const { session: login, transport: sent, log } = session();
    await login.jwt();
    const [first] = emulator.logins.listRefreshTokens().slice(-1);
    // Revoked in CM behind the session's back (as an administrator would for a lost pod).
    const held = sent.tokenRequests().length;
    await call(emulator, 'POST', '/api/v1/auth/revoke', { body: { token: await latestRefreshToken(login), username: USER, password: PASSWORD } });
    expect(emulator.logins.listRefreshTokens().find((token) => token.id === first?.id)).toMatchObject({ revoked: true });
    expect(held).toBe(1);
    renewalDue();
    const issued = await issuedDuring(async () => {
      await login.jwt();
    });
    expect(issued).toBe(1);
    expect(sent.tokenRequests().map((body) => body.grant_type)).toEqual(['password', 'refresh_token', 'refresh_token', 'password']);
    const refused = log.lines().find((line) => line.event === 'ciphertrust_refresh_token_refused');
    expect(refused).toMatchObject({ level: 'warn', status: 401, cmCode: 5 });
    // The new refresh token is used from then on.
    renewalDue();
    await login.jwt();
    expect(sent.tokenRequests().map((body) => body.grant_type).slice(-1)).toEqual(['refresh_token']);
    expect(emulator.logins.listRefreshTokens().find((token) => token.id === first?.id)).toMatchObject({ revoked: true });
    expectNoSecretsInLogs(log.text(), { secrets: [PASSWORD, ...sent.tokenRequests().map((body) => body.refresh_token)] });
  });

  /** The refresh token the session holds, as its next renewal will present it. */
  async function latestRefreshToken(login: CipherTrustSession): Promise<string> {
    const spy = transportOf.get(login)!;
    renewalDue();
    await login.jwt();
    return spy.tokenRequests().slice(-1)[0]!.refresh_token!;
  }

  // What CM answers a refused refresh token is not documented (L): each plausible refusal falls
  // back to the password once; a busy or failing CM does not (it would only add a token).
  it.each([400, 401, 403, 404])('treats a %i answer to the refresh token as a refusal: one password login', async (status) => {
    const { session: login, transport: sent } = session();
    await login.jwt();
    renewalDue();
    emulator.faults.failNext({ endpoint: 'auth', status });
    await login.jwt();
    expect(sent.tokenRequests().map((body) => body.grant_type)).toEqual(['password', 'refresh_token', 'password']);
  });

  it.each([408, 429, 500])('keeps the refresh token and does not log in with the password on a %i', async (status) => {
    const { session: login, transport: sent } = session();
    await login.jwt();
    renewalDue();
    emulator.faults.failNext({ endpoint: 'auth', status });
    await expect(login.jwt()).rejects.toMatchObject({ failure: 'rejected', endpoint: 'auth_tokens', details: { status } });
    await login.jwt();
    expect(sent.tokenRequests().map((body) => body.grant_type)).toEqual(['password', 'refresh_token', 'refresh_token']);
  });

  it('keeps the refresh token through an outage: network errors never lead to a password login', async () => {
    const { session: login, transport: sent } = session();
    await login.jwt();
    renewalDue();
    await emulator.down();
    try {
      await expect(login.jwt()).rejects.toMatchObject({ failure: 'network', endpoint: 'auth_tokens' });
    } finally {
      await emulator.up();
    }
    await login.jwt();
    expect(sent.tokenRequests().map((body) => body.grant_type)).toEqual(['password', 'refresh_token', 'refresh_token']);
  });

  it('concurrent callers share one renewal', async () => {
    const { session: login, transport: sent } = session();
    await login.jwt();
    renewalDue();
    const jwts = await Promise.all(Array.from({ length: 10 }, () => login.jwt()));
    expect(new Set(jwts).size).toBe(1);
    expect(sent.tokenRequests()).toHaveLength(2);
  });

  it('sends auth_domain and domain with the password login, and neither with the refresh token', async () => {
    const grant: CipherTrustGrant = { type: 'password', username: PARTNER_USER, password: PASSWORD, authDomain: 'partners' };
    const { client, transport: sent } = session(grant, 'audit');
    await client.listKeys('jwks=publish', 100);
    renewalDue();
    await client.listKeys('jwks=publish', 100);
    expect(sent.tokenRequests()).toEqual([
      { grant_type: 'password', username: PARTNER_USER, password: PASSWORD, auth_domain: 'partners', domain: 'audit' },
      { grant_type: 'refresh_token', refresh_token: expect.any(String) as unknown },
    ]);
    // The refresh token still works: it was never presented for another domain.
    expect(emulator.logins.listRefreshTokens().slice(-1)[0]).toMatchObject({ username: PARTNER_USER, domain: 'audit', revoked: false });

    const { session: withoutAuthDomain } = session({ type: 'password', username: PARTNER_USER, password: PASSWORD }, 'audit');
    await expect(withoutAuthDomain.jwt()).rejects.toMatchObject({ failure: 'unauthorized', details: { status: 401 } });
  });

  it('uses a configured refresh token as is: no domain, no password, never revoked; refused, it says which variable', async () => {
    const issued = (await call(emulator, 'POST', '/api/v1/auth/tokens', { body: { username: PARTNER_USER, password: PASSWORD, auth_domain: 'partners' } })).json as { refresh_token: string };
    const { client, session: login, transport: sent } = session({ type: 'refresh_token', refreshToken: issued.refresh_token }, 'audit');
    const count = await issuedDuring(async () => {
      await client.listKeys('jwks=publish', 100);
      renewalDue();
      await client.listKeys('jwks=publish', 100);
    });
    expect(count).toBe(0);
    expect(sent.tokenRequests()).toEqual([
      { grant_type: 'refresh_token', refresh_token: issued.refresh_token },
      { grant_type: 'refresh_token', refresh_token: issued.refresh_token },
    ]);
    expect(await login.revokeRefreshToken()).toBe('nothing_to_revoke');
    expect(sent.sent.filter((request) => request.endpoint === 'auth_revoke')).toHaveLength(0);

    const { session: refused } = session({ type: 'refresh_token', refreshToken: 'not-a-token-CM-knows' });
    await expect(refused.jwt()).rejects.toMatchObject({ failure: 'unauthorized', message: expect.stringContaining('CIPHERTRUST_REFRESH_TOKEN') as unknown });
  });

  it('client_credential: sends its client_id over mTLS, never domain, gets no refresh token, renews by logging in again', async () => {
    const files = await emulator.issueClientCertificate('jwks-publisher-client');
    const { readFile } = await import('node:fs/promises');
    const clientCert = { certPem: await readFile(files.certFile, 'utf8'), keyPem: await readFile(files.keyFile, 'utf8') };
    const clientId = emulator.logins.registerClient({ commonName: 'jwks-publisher-client' });
    // A domain given to the session is not sent with this grant (CM answers 400 if it is).
    const { client, session: login, transport: sent } = session({ type: 'client_credential', clientId }, 'partners', transport({ clientCert }));
    const count = await issuedDuring(async () => {
      await client.listKeys('jwks=publish', 100);
      renewalDue();
      await client.listKeys('jwks=publish', 100);
    });
    expect(count).toBe(0);
    expect(sent.tokenRequests()).toEqual([
      { grant_type: 'client_credential', client_id: clientId },
      { grant_type: 'client_credential', client_id: clientId },
    ]);
    expect(await login.revokeRefreshToken()).toBe('nothing_to_revoke');
  });

  it('revokes the refresh token it obtained, once; the emulator then refuses it', async () => {
    const { session: login, transport: sent, log } = session();
    await login.jwt();
    const [ours] = emulator.logins.listRefreshTokens().slice(-1);
    expect(await login.revokeRefreshToken()).toBe('revoked');
    expect(emulator.logins.listRefreshTokens().find((token) => token.id === ours?.id)).toMatchObject({ revoked: true });
    const revoke = sent.sent.find((request) => request.endpoint === 'auth_revoke');
    expect(Object.keys(revoke?.body as object).sort()).toEqual(['client_id', 'token']);
    expect(await login.revokeRefreshToken()).toBe('nothing_to_revoke');
    expect(log.lines().some((line) => line.event === 'ciphertrust_refresh_token_revoked')).toBe(true);
    expectNoSecretsInLogs(log.text(), { secrets: [PASSWORD, (revoke?.body as { token: string }).token] });
  });

  it('a revocation CM refuses is logged and reported, never thrown', async () => {
    const { session: login, log } = session();
    await login.jwt();
    emulator.faults.failNext({ endpoint: 'auth_revoke', status: 403 });
    expect(await login.revokeRefreshToken()).toBe('failed');
    expect(log.lines().find((line) => line.event === 'ciphertrust_refresh_token_revocation_failed')).toMatchObject({ level: 'warn', status: 403 });
    await emulator.down();
    try {
      expect(await login.revokeRefreshToken()).toBe('failed');
    } finally {
      await emulator.up();
    }
  });
});
