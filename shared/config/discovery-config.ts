import type { EnvReader } from './env.js';

/** What the discovery document says about us; both values are published exactly as configured. */
export interface DiscoveryConfig {
  /** JWKS_ISSUER: the `iss` our internal apps put in their tokens. */
  readonly issuer: string;
  /** JWKS_PUBLIC_URL: the URL partners reach /jwks at (the document's `jwks_uri`). */
  readonly jwksUri: string;
}

const ISSUER = 'JWKS_ISSUER';
const PUBLIC_URL = 'JWKS_PUBLIC_URL';
/** Hosts for which http is allowed (local runs and tests); anything else must be https. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * JWKS_ISSUER and JWKS_PUBLIC_URL: both set (discovery served), or neither (not served). Each must
 * be an absolute https URL (http only for a loopback host) without query, fragment or credentials;
 * OIDC Discovery 1.0 section 3 and RFC 8414 section 2 ask that of an issuer, and clients such as
 * openid-client refuse plain http. Values are not normalised: clients compare the issuer to the
 * token's `iss` character for character (a trailing slash matters).
 */
export function readDiscoveryConfig(env: EnvReader): DiscoveryConfig | undefined {
  const issuer = env.raw(ISSUER);
  const jwksUri = env.raw(PUBLIC_URL);
  if (issuer === undefined && jwksUri === undefined) return undefined;
  if (issuer === undefined) env.problem(ISSUER, `must be set when ${PUBLIC_URL} is (discovery needs both)`);
  if (jwksUri === undefined) env.problem(PUBLIC_URL, `must be set when ${ISSUER} is (discovery needs both)`);
  const issuerOk = issuer !== undefined && checkUrl(env, ISSUER, issuer);
  const jwksUriOk = jwksUri !== undefined && checkUrl(env, PUBLIC_URL, jwksUri);
  return issuerOk && jwksUriOk ? { issuer, jwksUri } : undefined;
}

function checkUrl(env: EnvReader, name: string, value: string): boolean {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  const problem = url === undefined ? 'must be an absolute https:// URL' : urlProblem(url, value);
  if (problem === undefined) return true;
  // A URL with credentials is not echoed.
  const embedsCredentials = url !== undefined && (url.username !== '' || url.password !== '');
  env.problem(name, embedsCredentials ? problem : `${problem} (got ${JSON.stringify(value.slice(0, 80))})`);
  return false;
}

function urlProblem(url: URL, value: string): string | undefined {
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) return 'must use https:// (http:// only for localhost, 127.0.0.1 or [::1])';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an absolute https:// URL';
  if (url.username !== '' || url.password !== '') return 'must not embed credentials';
  if (value.includes('?')) return 'must not have a query';
  if (value.includes('#')) return 'must not have a fragment';
  return undefined;
}
