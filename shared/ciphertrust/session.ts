import type { CipherTrustGrant } from '../config/ciphertrust-config.js';
import type { Logger } from '../observability/logger.js';
import { CipherTrustError } from './errors.js';
import { cmErrorCode, describeCmError } from './cm-error.js';
import type { CipherTrustResponse, CipherTrustTransport } from './transport.js';

interface Token {
  readonly jwt: string;
  /** When we stop using it: before CM's expiry, so a request never carries a dying token. */
  readonly renewAt: number;
}

/** The refresh token renewals use: the configured one, or the one our password login got. */
interface RefreshToken {
  readonly token: string;
  /** Ours to revoke: obtained by this process's password login (never a configured one). */
  readonly ours: boolean;
  /** The client the token was issued to (the login answer's client_id): what revoking it takes. */
  readonly clientId: string | undefined;
}

/** How revoking our refresh token at shutdown went. */
export type RevocationOutcome = 'revoked' | 'nothing_to_revoke' | 'failed';

/** CM's default token lifetime, used when an answer has no usable `duration`. */
const DEFAULT_DURATION_SECONDS = 300;
const MAX_RENEW_MARGIN_MS = 60_000;

/**
 * Whether CM refused a refresh token (unknown, expired or revoked), as opposed to being unable to
 * answer. What CM answers is not documented (L): 401 NCERRUnauthorizedAccess like its other login
 * refusals, 400 as OAuth's invalid_grant, 403, or 404 for a token it does not know are all
 * plausible, so any 4xx counts but 408 and 429 (CM busy: the token is fine). 5xx and network
 * errors never do: a password login then would only add a refresh token to CM.
 */
function refusedRefreshToken(status: number): boolean {
  return status >= 400 && status <= 499 && status !== 408 && status !== 429;
}

/**
 * A CipherTrust Manager login: gets a JWT with the configured grant (POST /api/v1/auth/tokens),
 * reuses it, and renews it when 80% of its life has passed (at most a minute early). Concurrent
 * callers share one login request.
 *
 * CM returns a refresh token with every password login, and by default refresh tokens never
 * expire: logging in with the password at every renewal would leave hundreds of live credentials
 * a day in CM. So only the first login uses the password; renewals present its refresh token
 * (`grant_type: refresh_token`, never with `domain`: CM revokes a refresh token presented for
 * another domain), and the password is used again only when CM refuses the refresh token. The
 * refresh token is never renewed (`renew_refresh_token`): that would mint a new one at every
 * renewal, and a lost answer would leave us holding a revoked one. client_credential gets no
 * refresh token: each renewal is a client_credential login, which leaves nothing behind in CM.
 */
export class CipherTrustSession {
  private token: Token | undefined;
  private pending: Promise<Token> | undefined;
  private refresh: RefreshToken | undefined;

  constructor(
    private readonly transport: CipherTrustTransport,
    private readonly grant: CipherTrustGrant,
    /** The domain to work in, sent with password logins only. */
    private readonly domain: string | undefined,
    private readonly now: () => number = Date.now,
    private readonly logger?: Logger,
  ) {
    if (grant.type === 'refresh_token') this.refresh = { token: grant.refreshToken, ours: false, clientId: undefined };
  }

  async jwt(): Promise<string> {
    if (this.token !== undefined && this.now() < this.token.renewAt) return this.token.jwt;
    this.pending ??= this.login().finally(() => (this.pending = undefined));
    this.token = await this.pending;
    return this.token.jwt;
  }

  /** Drops a token CM refused (401), unless a newer one already replaced it. */
  invalidate(jwt: string): void {
    if (this.token?.jwt === jwt) this.token = undefined;
  }

  /**
   * Revokes the refresh token our password login obtained (`POST /api/v1/auth/revoke` with the
   * token and its client_id; PS Revoke-CMToken, H), so a stopped process leaves no live
   * credential in CM. A configured refresh token is never revoked: the next process needs it.
   * Best effort: the outcome is logged and returned, never thrown.
   */
  async revokeRefreshToken(): Promise<RevocationOutcome> {
    const refresh = this.refresh;
    if (refresh?.ours !== true) return 'nothing_to_revoke';
    // The holder proves itself with the client id; without one, with the password (PS help, H).
    const owner: Record<string, string> =
      refresh.clientId !== undefined ? { client_id: refresh.clientId } : this.grant.type === 'password' ? { username: this.grant.username, password: this.grant.password } : {};
    // The PowerShell module also sends its bearer JWT: send ours while it is valid (L whether CM needs it).
    const bearer = this.token !== undefined && this.now() < this.token.renewAt ? this.token.jwt : undefined;
    try {
      const response = await this.transport.send({
        endpoint: 'auth_revoke',
        method: 'POST',
        path: '/api/v1/auth/revoke',
        body: { token: refresh.token, ...owner },
        ...(bearer !== undefined && { bearer }),
      });
      if (response.status >= 200 && response.status <= 299) {
        if (this.refresh === refresh) this.refresh = undefined;
        this.logger?.info({ event: 'ciphertrust_refresh_token_revoked' }, 'revoked our CipherTrust Manager refresh token');
        return 'revoked';
      }
      this.logger?.warn(
        { event: 'ciphertrust_refresh_token_revocation_failed', status: response.status, cmCode: cmErrorCode(response), reason: describeCmError(response) },
        'CipherTrust Manager did not revoke our refresh token',
      );
    } catch (error) {
      this.logger?.warn({ event: 'ciphertrust_refresh_token_revocation_failed', reason: error instanceof Error ? error.message : String(error) }, 'could not revoke our CipherTrust Manager refresh token');
    }
    return 'failed';
  }

  private async login(): Promise<Token> {
    const refresh = this.refresh;
    if (refresh !== undefined) {
      const started = this.now();
      // No domain, no auth_domain: the token works in the domain it was issued for.
      const response = await this.send({ grant_type: 'refresh_token', refresh_token: refresh.token });
      if (response.status >= 200 && response.status <= 299) return this.accept(response, started);
      if (!refusedRefreshToken(response.status) || this.grant.type !== 'password') throw this.loginFailure(response, 'refresh_token');
      if (this.refresh === refresh) this.refresh = undefined;
      this.logger?.warn(
        { event: 'ciphertrust_refresh_token_refused', status: response.status, cmCode: cmErrorCode(response), reason: describeCmError(response) },
        'CipherTrust Manager refused our refresh token: logging in with the password again',
      );
    }
    const started = this.now();
    const response = await this.send(this.loginBody());
    if (response.status < 200 || response.status > 299) throw this.loginFailure(response, this.grant.type);
    return this.accept(response, started);
  }

  private send(body: Record<string, string>): Promise<CipherTrustResponse> {
    return this.transport.send({ endpoint: 'auth_tokens', method: 'POST', path: '/api/v1/auth/tokens', body });
  }

  private loginBody(): Record<string, string> {
    switch (this.grant.type) {
      case 'password':
        return {
          grant_type: 'password',
          username: this.grant.username,
          password: this.grant.password,
          ...(this.grant.authDomain !== undefined && { auth_domain: this.grant.authDomain }),
          ...(this.domain !== undefined && { domain: this.domain }),
        };
      case 'client_credential':
        // CM does not support domain with this grant; the certificate and client_id identify us.
        return { grant_type: 'client_credential', client_id: this.grant.clientId };
      case 'refresh_token':
        return { grant_type: 'refresh_token', refresh_token: this.grant.refreshToken };
    }
  }

  private loginFailure(response: CipherTrustResponse, grant: string): CipherTrustError {
    const details = { status: response.status, ...(cmErrorCode(response) !== undefined && { cmCode: cmErrorCode(response) }) };
    if (response.status === 401 || response.status === 403 || (grant === 'refresh_token' && refusedRefreshToken(response.status))) {
      const which = this.grant.type === 'refresh_token' ? 'the configured refresh token (CIPHERTRUST_REFRESH_TOKEN)' : `the ${grant} login`;
      return new CipherTrustError('unauthorized', 'auth_tokens', `CipherTrust Manager refused ${which}: ${describeCmError(response)}`, details);
    }
    return new CipherTrustError('rejected', 'auth_tokens', `CipherTrust Manager answered the login with ${describeCmError(response)}`, details);
  }

  /** A 2xx login answer: its JWT, and the refresh token a password login brings (kept for renewals). */
  private accept(response: CipherTrustResponse, started: number): Token {
    const body = response.body as { jwt?: unknown; duration?: unknown; refresh_token?: unknown; refresh_token_id?: unknown; client_id?: unknown } | undefined;
    if (typeof body?.jwt !== 'string' || body.jwt === '') {
      throw new CipherTrustError('malformed_response', 'auth_tokens', 'the login answer has no jwt');
    }
    const refreshToken = typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : undefined;
    if (refreshToken !== undefined && this.refresh !== undefined && refreshToken !== this.refresh.token) {
      // CM documents the same token back unless renewal is asked; should it hand out another
      // anyway, the old one may be gone: keep the one it gave last.
      this.refresh = { ...this.refresh, token: refreshToken };
    }
    if (this.grant.type === 'password' && this.refresh === undefined && refreshToken !== undefined) {
      const clientId = typeof body.client_id === 'string' && body.client_id !== '' ? body.client_id : undefined;
      this.refresh = { token: refreshToken, ours: true, clientId };
      // The id (not the token) lets an administrator delete it in CM if this process is lost.
      this.logger?.info(
        { event: 'ciphertrust_login', grant: 'password', refreshTokenId: typeof body.refresh_token_id === 'string' ? body.refresh_token_id : undefined, clientId },
        'logged in to CipherTrust Manager; renewals use the refresh token',
      );
    }
    const duration = typeof body.duration === 'number' && body.duration > 0 ? body.duration : DEFAULT_DURATION_SECONDS;
    const lifetimeMs = duration * 1000;
    return { jwt: body.jwt, renewAt: started + lifetimeMs - Math.min(MAX_RENEW_MARGIN_MS, lifetimeMs * 0.2) };
  }
}
