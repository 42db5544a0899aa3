/**
 * `POST /api/v1/auth/tokens`, `POST /api/v1/auth/revoke` and bearer-token checks, as CM does them
 * (PowerShell New-CMToken and Revoke-CMToken help, H; docs/research/ciphertrust-api.md, Logins).
 * JWTs are HS256 with a per-process secret (CM signs its own way; clients must treat the JWT as
 * opaque). Refresh tokens come with password and user_certificate logins only, never expire
 * unless a lifetime is set, and are revoked for good when presented with a domain they were not
 * issued for.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, errors, jwtVerify } from 'jose';
import { ROOT_DOMAIN, type Accounts, type ClientCertificate } from './accounts.js';
import { invalidParam, notFound, unauthorized } from './errors.js';
import { RefreshTokenStore, type LoginSubject, type RefreshTokenInfo } from './refresh-tokens.js';
import type { ClientRegistration, EmulatorLogins } from './types.js';

export type { ClientCertificate } from './accounts.js';

/** CM's answer to a token request (reference, H). client_credential answers carry no refresh token. */
export interface TokenResponse {
  jwt: string;
  duration: number;
  token_type: 'Bearer';
  client_id: string;
  refresh_token?: string;
  refresh_token_id?: string;
}

/** Who a valid bearer token belongs to. */
export interface Principal {
  readonly subject: string;
  readonly username: string;
  readonly domain: string;
}

export interface TokenServiceOptions {
  readonly accounts: Accounts;
  readonly durationSeconds: number;
  /** Lifetime of refresh tokens from logins that set none; undefined = never expire (CM's default). */
  readonly refreshTokenLifetimeMinutes?: number | undefined;
  readonly now: () => Date;
}

export const GRANT_TYPES: readonly string[] = ['password', 'refresh_token', 'client_credential', 'user_certificate'];

/** How a grant came out: who logs in, and whether (and how long) a refresh token comes with it. */
interface Login {
  readonly subject: LoginSubject;
  /** A refresh token presented and kept (refresh grant without renewal). */
  readonly presented?: { readonly token: string; readonly id: string };
  /** Issue a refresh token with the JWT (password and user_certificate). */
  readonly newRefreshToken: boolean;
  readonly lifetimeMinutes?: number | undefined;
}

export class TokenService implements EmulatorLogins {
  private readonly secret = randomBytes(32);
  private duration: number;
  /** jti -> expiry (seconds): live tokens; expired ones are pruned as new ones are issued. */
  private readonly live = new Map<string, number>();
  private readonly refreshTokens: RefreshTokenStore;

  constructor(private readonly options: TokenServiceOptions) {
    this.duration = options.durationSeconds;
    this.refreshTokens = new RefreshTokenStore(options.now);
  }

  get refreshTokensIssued(): number {
    return this.refreshTokens.issued;
  }

  listRefreshTokens(): RefreshTokenInfo[] {
    return this.refreshTokens.list();
  }

  registerClient(registration: ClientRegistration): string {
    return this.options.accounts.registerClient(registration);
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
    let login: Login;
    switch (grant) {
      case 'password':
        login = this.passwordLogin(body);
        break;
      case 'refresh_token':
        login = this.refreshLogin(body);
        break;
      case 'client_credential':
        login = this.clientLogin(body, certificate);
        break;
      case 'user_certificate':
        login = this.certificateLogin(body, certificate);
        break;
      default:
        throw invalidParam(`unsupported grant_type ${grant}`);
    }
    const issued = login.newRefreshToken ? this.refreshTokens.issue(login.subject, login.lifetimeMinutes) : undefined;
    const refresh = issued === undefined ? login.presented : { token: issued.token, id: issued.record.id };
    return {
      jwt: await this.sign(login.subject),
      duration: this.duration,
      token_type: 'Bearer',
      client_id: login.subject.clientId,
      ...(refresh !== undefined && { refresh_token: refresh.token, refresh_token_id: refresh.id }),
    };
  }

  /**
   * `POST /api/v1/auth/revoke`: `token` (a refresh token) with the `client_id` it was issued to, or
   * with the username and password of its owner (Revoke-CMToken help, H). Revoking a revoked
   * token again succeeds. An unknown token is a 404 (L: not documented).
   */
  revoke(body: Record<string, unknown>): void {
    const token = optionalString(body, 'token');
    if (token === undefined) throw invalidParam('token is required');
    const clientId = optionalString(body, 'client_id');
    const username = optionalString(body, 'username');
    const password = optionalString(body, 'password');
    if (clientId === undefined && (username === undefined || password === undefined)) throw invalidParam('client_id, or username and password, are required');
    const record = this.refreshTokens.find(token);
    if (record === undefined) throw notFound();
    const owner =
      clientId !== undefined
        ? clientId === record.clientId
        : this.options.accounts.passwordLogin(username ?? '', password ?? '', this.options.accounts.user(record.username)?.authDomain ?? ROOT_DOMAIN)?.username === record.username;
    if (!owner) throw unauthorized(clientId !== undefined ? 'Invalid Client' : 'Wrong username or password.');
    record.revoked = true;
  }

  private passwordLogin(body: Record<string, unknown>): Login {
    const username = optionalString(body, 'username');
    const password = optionalString(body, 'password');
    if (username === undefined || password === undefined) throw invalidParam('username and password are required');
    const user = this.options.accounts.passwordLogin(username, password, optionalString(body, 'auth_domain') ?? ROOT_DOMAIN);
    if (user === undefined) throw unauthorized('Wrong username or password.');
    // PS help: `domain` "defaults to the root domain"; for a user created elsewhere the emulator
    // defaults to the user's auth domain instead (L), so such a user can log in without `domain`.
    const domain = optionalString(body, 'domain') ?? user.authDomain;
    if (!user.domains.has(domain)) throw unauthorized(`User is not a member of domain ${domain}.`);
    return { subject: this.userSubject(user.username, domain), newRefreshToken: true, lifetimeMinutes: lifetimeOf(body) ?? this.options.refreshTokenLifetimeMinutes };
  }

  private refreshLogin(body: Record<string, unknown>): Login {
    const token = optionalString(body, 'refresh_token');
    if (token === undefined) throw invalidParam('refresh_token is required');
    const record = this.refreshTokens.find(token);
    if (record === undefined || !this.refreshTokens.usable(record)) throw unauthorized('Invalid refresh token.');
    const domain = optionalString(body, 'domain');
    if (domain !== undefined && domain !== record.domain) {
      // PS help: the refresh token "will be revoked if it was not issued for this domain". For good.
      record.revoked = true;
      throw unauthorized('Invalid refresh token: it was not issued for this domain and is now revoked.');
    }
    if (body.renew_refresh_token === true || body.renew_refresh_token === 'true') {
      record.revoked = true;
      const remainingMinutes = record.expiresAt === undefined ? undefined : Math.max(0, (record.expiresAt.getTime() - this.options.now().getTime()) / 60_000);
      return { subject: record, newRefreshToken: true, lifetimeMinutes: remainingMinutes };
    }
    return { subject: record, presented: { token, id: record.id }, newRefreshToken: false };
  }

  private clientLogin(body: Record<string, unknown>, certificate: ClientCertificate): Login {
    // PS help: `domain` is "not currently supported for client_credential"; the error is L.
    if (optionalString(body, 'domain') !== undefined) throw invalidParam('domain is not supported with the client_credential grant');
    const clientId = optionalString(body, 'client_id');
    if (clientId === undefined) throw invalidParam('client_id is required with the client_credential grant');
    const client = this.options.accounts.client(clientId, certificate);
    if (client === undefined) throw unauthorized('Invalid Client');
    // "Returns only a JWT" (PS help): no refresh token for a client.
    return { subject: { subject: `client|${client.clientId}`, username: client.name, domain: client.domain, clientId: client.clientId }, newRefreshToken: false };
  }

  private certificateLogin(body: Record<string, unknown>, certificate: ClientCertificate): Login {
    // The certificate's CN names the user (CM matches the whole subject DN, M; the CN is enough here).
    const user = certificate.commonName === undefined ? undefined : this.options.accounts.user(certificate.commonName);
    if (!certificate.authorized || user === undefined) throw unauthorized('A client certificate naming a known user is required.');
    const domain = optionalString(body, 'domain') ?? user.authDomain;
    if (!user.domains.has(domain)) throw unauthorized(`User is not a member of domain ${domain}.`);
    return { subject: this.userSubject(user.username, domain), newRefreshToken: true, lifetimeMinutes: this.options.refreshTokenLifetimeMinutes };
  }

  private userSubject(username: string, domain: string): LoginSubject {
    return { subject: `local|${username}`, username, domain, clientId: randomUUID() };
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

  private async sign(session: LoginSubject): Promise<string> {
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

/** `refresh_token_lifetime` (minutes, password grant only; PS help, H). */
function lifetimeOf(body: Record<string, unknown>): number | undefined {
  const value = body.refresh_token_lifetime;
  if (value === undefined || value === null || value === '') return undefined;
  const minutes = typeof value === 'string' ? Number(value) : value;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1) throw invalidParam('refresh_token_lifetime must be a positive integer of minutes');
  return minutes;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalidParam(`${field} must be a string`);
  return value;
}
