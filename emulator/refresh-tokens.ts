/**
 * CM's refresh tokens: opaque strings, one record each with its own id (CM lists and deletes them
 * by id), the domain it was issued for, the client it belongs to, and an expiry that CM leaves
 * unset by default (`refresh_token_lifetime`, minutes, on a password login; PS help, H). Counts
 * every token it ever issued, so tests can tell one login per process from one per renewal.
 */
import { randomBytes, randomUUID } from 'node:crypto';

/** Who a refresh token (and the JWTs made from it) belongs to. */
export interface LoginSubject {
  readonly subject: string;
  readonly username: string;
  /** The domain the token works in. */
  readonly domain: string;
  readonly clientId: string;
}

export interface RefreshTokenRecord extends LoginSubject {
  readonly id: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | undefined;
  revoked: boolean;
}

/** What the control API and tests see of a refresh token: never the token itself. */
export interface RefreshTokenInfo {
  readonly id: string;
  readonly username: string;
  readonly domain: string;
  readonly clientId: string;
  readonly createdAt: string;
  readonly expiresAt: string | undefined;
  readonly revoked: boolean;
  readonly expired: boolean;
}

export class RefreshTokenStore {
  private readonly tokens = new Map<string, RefreshTokenRecord>();
  private issuedCount = 0;

  constructor(private readonly now: () => Date) {}

  /** Every refresh token issued since start, revoked and expired ones included. */
  get issued(): number {
    return this.issuedCount;
  }

  issue(owner: LoginSubject, lifetimeMinutes: number | undefined): { token: string; record: RefreshTokenRecord } {
    const token = randomBytes(48).toString('base64url');
    const createdAt = this.now();
    const expiresAt = lifetimeMinutes === undefined ? undefined : new Date(createdAt.getTime() + lifetimeMinutes * 60_000);
    const record: RefreshTokenRecord = { ...owner, id: randomUUID(), createdAt, expiresAt, revoked: false };
    this.tokens.set(token, record);
    this.issuedCount++;
    return { token, record };
  }

  /** The record of a token, whatever its state (unknown: undefined). */
  find(token: string): RefreshTokenRecord | undefined {
    return this.tokens.get(token);
  }

  usable(record: RefreshTokenRecord): boolean {
    return !record.revoked && !this.expired(record);
  }

  list(): RefreshTokenInfo[] {
    return [...this.tokens.values()].map((record) => ({
      id: record.id,
      username: record.username,
      domain: record.domain,
      clientId: record.clientId,
      createdAt: record.createdAt.toISOString(),
      expiresAt: record.expiresAt?.toISOString(),
      revoked: record.revoked,
      expired: this.expired(record),
    }));
  }

  private expired(record: RefreshTokenRecord): boolean {
    return record.expiresAt !== undefined && this.now().getTime() >= record.expiresAt.getTime();
  }
}
