/**
 * `POST /api/v1/auth/tokens` and bearer-token checks. JWTs are HS256 with a per-process secret
 * (CM signs its own way; clients must treat the JWT as opaque). Refresh tokens are opaque random
 * strings that never expire, as CM's default (reference, H).
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, errors, jwtVerify } from 'jose';
import { invalidParam, unauthorized } from './errors.js';

/** CM's answer to a token request (reference, H). */
export interface TokenResponse {
  jwt: string;
  duration: number;
  token_type: 'Bearer';
  client_id: string;
  refresh_token: string;
  refresh_token_id: string;
}

/** What the TLS layer knows about the caller's client certificate. */
export interface ClientCertificate {
  /** Presented and signed by the emulator's CA. */
  readonly authorized: boolean;
  readonly commonName: string | undefined;
}

/** Who a valid bearer token belongs to. */
export interface Principal {
  readonly subject: string;
  readonly username: string;
  readonly domain: string;
}

interface Session {
  readonly id: string;
  readonly subject: string;
  readonly username: string;
  readonly domain: string;
  readonly clientId: string;
}

export interface TokenServiceOptions {
  readonly users: Record<string, string>;
  readonly durationSeconds: number;
  readonly now: () => Date;
}

export const GRANT_TYPES: readonly string[] = ['password', 'refresh_token', 'client_credential', 'user_certificate'];

export class TokenService {
  private readonly secret = randomBytes(32);
  private duration: number;
  /** jti of every JWT still honoured; revokeAll() empties it. */
  /** jti -> expiry (seconds): live tokens; expired ones are pruned as new ones are issued. */
  private readonly live = new Map<string, number>();
  private readonly refreshTokens = new Map<string, Session>();

  constructor(private readonly options: TokenServiceOptions) {
    this.duration = options.durationSeconds;
  }

  setDuration(seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 1) throw invalidParam('token duration must be a positive integer of seconds');
    this.duration = seconds;
  }

  resetDuration(): void {
    this.duration = this.options.durationSeconds;
  }

  /** Existing JWTs stop working; refresh tokens stay valid, so clients can re-authenticate. */
  revokeAll(): void {
    this.live.clear();
  }

  /** The grant type a request asks for (CM's default is `password`). */
  static grantType(body: Record<string, unknown>): string {
    return typeof body.grant_type === 'string' && body.grant_type !== '' ? body.grant_type : 'password';
  }

  async issue(body: Record<string, unknown>, certificate: ClientCertificate): Promise<TokenResponse> {
    const grant = TokenService.grantType(body);
    const domain = optionalString(body, 'domain') ?? 'root';
    let session: Session;
    let reuse: string | undefined;
    switch (grant) {
      case 'password': {
        const username = optionalString(body, 'username');
        const password = optionalString(body, 'password');
        if (username === undefined || password === undefined) throw invalidParam('username and password are required');
        if (!this.passwordMatches(username, password)) throw unauthorized('Wrong username or password.');
        session = this.newSession(`local|${username}`, username, domain);
        break;
      }
      case 'refresh_token': {
        const token = optionalString(body, 'refresh_token');
        const found = token === undefined ? undefined : this.refreshTokens.get(token);
        if (token === undefined || found === undefined) throw unauthorized('Invalid refresh token.');
        session = found;
        if (body.renew_refresh_token === true || body.renew_refresh_token === 'true') this.refreshTokens.delete(token);
        else reuse = token;
        break;
      }
      case 'client_credential': {
        // The client is whoever holds a certificate issued by the emulator's CA.
        if (!certificate.authorized || certificate.commonName === undefined) throw unauthorized('A client certificate signed by a trusted CA is required.');
        session = this.newSession(`client|${certificate.commonName}`, certificate.commonName, domain);
        break;
      }
      case 'user_certificate': {
        // The certificate's CN names the user (how CM maps it is not documented here, L).
        const user = certificate.commonName;
        if (!certificate.authorized || user === undefined || this.options.users[user] === undefined) {
          throw unauthorized('A client certificate naming a known user is required.');
        }
        session = this.newSession(`local|${user}`, user, domain);
        break;
      }
      default:
        throw invalidParam(`unsupported grant_type ${grant}`);
    }
    const refreshToken = reuse ?? this.newRefreshToken(session);
    return {
      jwt: await this.sign(session),
      duration: this.duration,
      token_type: 'Bearer',
      client_id: session.clientId,
      refresh_token: refreshToken,
      refresh_token_id: this.refreshTokens.get(refreshToken)?.id ?? session.id,
    };
  }

  /** Checks an Authorization header; throws the CM 401 otherwise. */
  async verify(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const token = match?.[1];
    if (token === undefined) throw unauthorized('Token is missing.');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'], issuer: 'kylo', currentDate: this.options.now(), clockTolerance: 0 }));
    } catch (error) {
      throw unauthorized(error instanceof errors.JWTExpired ? 'Token is expired' : 'Token is invalid');
    }
    if (typeof payload.jti !== 'string' || !this.live.has(payload.jti)) throw unauthorized('Token has been revoked');
    const username = typeof payload.preferred_username === 'string' ? payload.preferred_username : '';
    const cust = payload.cust as { domain?: unknown } | undefined;
    return { subject: payload.sub ?? '', username, domain: typeof cust?.domain === 'string' ? cust.domain : 'root' };
  }

  private passwordMatches(username: string, password: string): boolean {
    const expected = Object.hasOwn(this.options.users, username) ? this.options.users[username] : undefined;
    // Compare digests in constant time, and do the work even for an unknown user.
    const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
    const same = timingSafeEqual(digest(password), digest(expected ?? randomUUID()));
    return expected !== undefined && same;
  }

  private newSession(subject: string, username: string, domain: string): Session {
    return { id: randomUUID(), subject, username, domain, clientId: randomUUID() };
  }

  private newRefreshToken(session: Session): string {
    const token = randomBytes(48).toString('base64url');
    // Each refresh token gets its own id, as CM lists them individually.
    this.refreshTokens.set(token, { ...session, id: randomUUID() });
    return token;
  }

  private async sign(session: Session): Promise<string> {
    const issuedAt = Math.floor(this.options.now().getTime() / 1000);
    const jti = randomUUID();
    const jwt = await new SignJWT({ preferred_username: session.username, client_id: session.clientId, cust: { domain: session.domain } })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('kylo')
      .setSubject(session.subject)
      .setJti(jti)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + this.duration)
      .sign(this.secret);
    for (const [known, expiry] of this.live) if (expiry < issuedAt) this.live.delete(known);
    this.live.set(jti, issuedAt + this.duration);
    return jwt;
  }
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalidParam(`${field} must be a string`);
  return value;
}
