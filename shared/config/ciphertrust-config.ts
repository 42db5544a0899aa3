import { readFileSync } from 'node:fs';
import { readCipherTrustNodes } from './ciphertrust-nodes.js';
import type { EnvReader } from './env.js';

/**
 * How key-rotated proves who it is to CipherTrust Manager (POST /api/v1/auth/tokens grant).
 * `authDomain`: the domain the user was created in (CM's default: root). `clientId`: the client
 * registered in CM for the client certificate (client_credential).
 */
export type CipherTrustGrant =
  | { readonly type: 'password'; readonly username: string; readonly password: string; readonly authDomain?: string | undefined }
  | { readonly type: 'refresh_token'; readonly refreshToken: string }
  | { readonly type: 'client_credential'; readonly clientId: string };

export interface CipherTrustConfig {
  /** Base URL without a trailing slash, e.g. https://cm.bank.internal: the first of `urls`. */
  readonly url: string;
  /** Every node's base URL, in the order they are tried: one URL for a single CM or a load balancer. */
  readonly urls: readonly string[];
  /** How long a node that failed is tried only after the others (CIPHERTRUST_NODE_DOWN_FOR). */
  readonly nodeDownMs: number;
  readonly grant: CipherTrustGrant;
  /** CM domain to work in (password grant only); undefined means CM's default (root). */
  readonly domain: string | undefined;
  /** PEM contents, read at start so a missing file is a configuration error, not a 3 a.m. surprise. */
  readonly caPem: string | undefined;
  readonly clientCertPem: string | undefined;
  readonly clientKeyPem: string | undefined;
  /** CM label selector for the keys to publish, e.g. `jwks=publish`. */
  readonly keySelector: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  /** Retries stop once this much time has gone by since the first attempt of a request. */
  readonly retryBudgetMs: number;
  /** Parallel GET /vault/keys2/{id} calls. */
  readonly concurrency: number;
  readonly pageSize: number;
}

export const DEFAULT_KEY_SELECTOR = 'jwks=publish';
// CM label keys and values: conservative charset, so the selector is passed through as is.
const LABEL_SELECTOR = /^[A-Za-z0-9_.\-/]+=[A-Za-z0-9_.\-/]*(,[A-Za-z0-9_.\-/]+=[A-Za-z0-9_.\-/]*)*$/;

/**
 * Reads the CIPHERTRUST_* variables. Exactly one way to authenticate must be configured: a
 * password (with a username), a refresh token, or a client certificate alone with its client id
 * (client_credential). The domain variables are refused where CM would not honour them.
 */
export function readCipherTrustConfig(env: EnvReader): CipherTrustConfig {
  const allowInsecure = env.boolean('CIPHERTRUST_ALLOW_INSECURE_HTTP', false);
  const urls = readCipherTrustNodes(env, allowInsecure);
  const clientCertPem = readPemFile(env, 'CIPHERTRUST_CLIENT_CERT_FILE');
  const clientKeyPem = readPemFile(env, 'CIPHERTRUST_CLIENT_KEY_FILE');
  if ((clientCertPem === undefined) !== (clientKeyPem === undefined)) {
    env.problem('CIPHERTRUST_CLIENT_CERT_FILE', 'and CIPHERTRUST_CLIENT_KEY_FILE must be set together');
  }
  const keySelector = env.string('CIPHERTRUST_KEY_SELECTOR', DEFAULT_KEY_SELECTOR);
  if (!LABEL_SELECTOR.test(keySelector)) {
    env.problem('CIPHERTRUST_KEY_SELECTOR', 'must be a label selector like jwks=publish or a=x,b=y');
  }
  const grant = readGrant(env, clientCertPem !== undefined && clientKeyPem !== undefined);
  return {
    url: urls[0] ?? '',
    urls,
    nodeDownMs: env.durationMs('CIPHERTRUST_NODE_DOWN_FOR', 60_000, { minMs: 1000, maxMs: 3_600_000 }),
    grant,
    domain: readDomain(env, grant),
    caPem: readPemFile(env, 'CIPHERTRUST_CA_FILE'),
    clientCertPem,
    clientKeyPem,
    keySelector,
    timeoutMs: env.integer('CIPHERTRUST_TIMEOUT_MS', 10_000, { min: 100, max: 300_000 }),
    maxAttempts: env.integer('CIPHERTRUST_MAX_ATTEMPTS', 4, { min: 1, max: 10 }),
    retryBudgetMs: env.integer('CIPHERTRUST_RETRY_BUDGET_MS', 30_000, { min: 0, max: 600_000 }),
    concurrency: env.integer('CIPHERTRUST_CONCURRENCY', 4, { min: 1, max: 32 }),
    pageSize: env.integer('CIPHERTRUST_PAGE_SIZE', 100, { min: 1, max: 1000 }),
  };
}

function readGrant(env: EnvReader, hasClientCertificate: boolean): CipherTrustGrant {
  const username = env.raw('CIPHERTRUST_USERNAME');
  // Secrets are not trimmed: a password may legitimately end in a space.
  const password = env.secret('CIPHERTRUST_PASSWORD');
  const refreshToken = env.secret('CIPHERTRUST_REFRESH_TOKEN');
  if (password !== undefined && refreshToken !== undefined) {
    env.problem('CIPHERTRUST_PASSWORD', 'and CIPHERTRUST_REFRESH_TOKEN are both set: set only one');
  }
  const authDomain = env.raw('CIPHERTRUST_AUTH_DOMAIN');
  const clientId = env.raw('CIPHERTRUST_CLIENT_ID');
  if (clientId !== undefined && (password !== undefined || refreshToken !== undefined)) {
    env.problem('CIPHERTRUST_CLIENT_ID', 'is only for the client_credential grant (a client certificate without CIPHERTRUST_PASSWORD or CIPHERTRUST_REFRESH_TOKEN)');
  }
  if (refreshToken !== undefined) {
    // The refresh token already names its user; CM does not take auth_domain with this grant.
    if (authDomain !== undefined) env.problem('CIPHERTRUST_AUTH_DOMAIN', 'must not be set with CIPHERTRUST_REFRESH_TOKEN (it is for password logins)');
    return { type: 'refresh_token', refreshToken };
  }
  if (password !== undefined) {
    if (username === undefined) env.problem('CIPHERTRUST_USERNAME', 'must be set with CIPHERTRUST_PASSWORD');
    return { type: 'password', username: username ?? '', password, authDomain };
  }
  if (!hasClientCertificate) {
    env.problem(
      'CIPHERTRUST_PASSWORD',
      'or CIPHERTRUST_REFRESH_TOKEN must be set (or CIPHERTRUST_CLIENT_CERT_FILE, CIPHERTRUST_CLIENT_KEY_FILE and CIPHERTRUST_CLIENT_ID for client_credential)',
    );
    return { type: 'client_credential', clientId: clientId ?? '' };
  }
  if (clientId === undefined) env.problem('CIPHERTRUST_CLIENT_ID', 'must be set for the client_credential grant: the id of the client registered in CipherTrust Manager for this certificate');
  // auth_domain is where a user was created; a client's domain comes with its registration (L).
  if (authDomain !== undefined) env.problem('CIPHERTRUST_AUTH_DOMAIN', 'must not be set with the client_credential grant (it is for password logins)');
  return { type: 'client_credential', clientId: clientId ?? '' };
}

/**
 * CIPHERTRUST_DOMAIN, for password logins only. CM revokes a refresh token presented for a domain
 * it was not issued for, for good, and does not support `domain` with client_credential (PS
 * New-CMToken help, H): both are refused here rather than sent.
 */
function readDomain(env: EnvReader, grant: CipherTrustGrant): string | undefined {
  const domain = env.raw('CIPHERTRUST_DOMAIN');
  if (domain === undefined || grant.type === 'password') return domain;
  if (grant.type === 'refresh_token') {
    env.problem(
      'CIPHERTRUST_DOMAIN',
      'must not be set with CIPHERTRUST_REFRESH_TOKEN: a refresh token works in the domain it was issued for, and CipherTrust Manager revokes it for good when it is presented with another domain',
    );
  } else {
    env.problem('CIPHERTRUST_DOMAIN', 'must not be set with the client_credential grant: CipherTrust Manager does not support domain with it (the client works in the domain it was registered in)');
  }
  return undefined;
}

export function readPemFile(env: EnvReader, name: string): string | undefined {
  const path = env.raw(name);
  if (path === undefined) return undefined;
  try {
    const contents = readFileSync(path, 'utf8');
    if (!contents.includes('-----BEGIN ')) {
      env.problem(name, `does not name a PEM file (${path})`);
      return undefined;
    }
    return contents;
  } catch (error) {
    env.problem(name, `cannot be read (${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}
