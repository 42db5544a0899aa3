import type { CipherTrustGrant } from '../config/ciphertrust-config.js';
import { CipherTrustError } from './errors.js';
import { describeCmError } from './cm-error.js';
import type { CipherTrustTransport } from './transport.js';

interface Token {
  readonly jwt: string;
  /** When we stop using it: before CM's expiry, so a request never carries a dying token. */
  readonly renewAt: number;
}

/** CM's default token lifetime, used when an answer has no usable `duration`. */
const DEFAULT_DURATION_SECONDS = 300;
const MAX_RENEW_MARGIN_MS = 60_000;

/**
 * A CipherTrust Manager login: gets a JWT with the configured grant (POST /api/v1/auth/tokens),
 * reuses it, and renews it when 80% of its life has passed (at most a minute early). Concurrent
 * callers share one login request.
 */
export class CipherTrustSession {
  private token: Token | undefined;
  private pending: Promise<Token> | undefined;

  constructor(
    private readonly transport: CipherTrustTransport,
    private readonly grant: CipherTrustGrant,
    private readonly domain: string | undefined,
    private readonly now: () => number = Date.now,
  ) {}

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

  private async login(): Promise<Token> {
    const started = this.now();
    const response = await this.transport.send({ endpoint: 'auth_tokens', method: 'POST', path: '/api/v1/auth/tokens', body: this.requestBody() });
    if (response.status === 401 || response.status === 403) {
      throw new CipherTrustError('unauthorized', 'auth_tokens', `CipherTrust Manager refused the ${this.grant.type} login: ${describeCmError(response)}`, {
        status: response.status,
      });
    }
    if (response.status < 200 || response.status > 299) {
      throw new CipherTrustError('rejected', 'auth_tokens', `CipherTrust Manager answered the login with ${describeCmError(response)}`, {
        status: response.status,
      });
    }
    const body = response.body as { jwt?: unknown; duration?: unknown } | undefined;
    if (typeof body?.jwt !== 'string' || body.jwt === '') {
      throw new CipherTrustError('malformed_response', 'auth_tokens', 'the login answer has no jwt');
    }
    const duration = typeof body.duration === 'number' && body.duration > 0 ? body.duration : DEFAULT_DURATION_SECONDS;
    const lifetimeMs = duration * 1000;
    return { jwt: body.jwt, renewAt: started + lifetimeMs - Math.min(MAX_RENEW_MARGIN_MS, lifetimeMs * 0.2) };
  }

  private requestBody(): Record<string, string> {
    const domain: Record<string, string> = this.domain === undefined ? {} : { domain: this.domain };
    switch (this.grant.type) {
      case 'password':
        return { grant_type: 'password', username: this.grant.username, password: this.grant.password, ...domain };
      case 'refresh_token':
        return { grant_type: 'refresh_token', refresh_token: this.grant.refreshToken, ...domain };
      case 'client_credential':
        return { grant_type: 'client_credential', ...domain };
    }
  }
}
