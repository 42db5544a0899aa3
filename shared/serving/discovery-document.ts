import type { DiscoveryConfig } from '../config/discovery-config.js';
import { representationOf, type Representation } from './representation.js';

/**
 * The OpenID Connect discovery document (OIDC Discovery 1.0 section 3) we can truthfully publish:
 * we are not an OpenID Provider (no authorization endpoint, no response types, no subjects), only
 * the keys of the issuer named here. Relying parties that verify tokens need exactly these three
 * members: openid-client v6 and oauth4webapi read `issuer` (equal to the expected issuer) and
 * `jwks_uri`, and check a token's `alg` against `id_token_signing_alg_values_supported`.
 */
export interface DiscoveryDocument {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly id_token_signing_alg_values_supported: readonly string[];
}

/** A published key, as far as discovery cares. */
interface KeyAlgorithm {
  readonly use?: unknown;
  readonly alg?: unknown;
}

/**
 * The distinct `alg` of the keys that sign (`use` "sig", or no `use`), sorted. A key without `alg`
 * adds nothing: it is not ours to guess (an RSA key may sign RS256 or PS256); served sets always
 * carry `alg` (validate.ts refuses a key without one), so this is tolerance, not a path we take.
 */
export function signingAlgorithms(keys: readonly KeyAlgorithm[]): string[] {
  const algorithms = new Set<string>();
  for (const key of keys) {
    if ((key.use === undefined || key.use === 'sig') && typeof key.alg === 'string') algorithms.add(key.alg);
  }
  return [...algorithms].sort();
}

export function discoveryDocument(config: DiscoveryConfig, keys: readonly KeyAlgorithm[]): DiscoveryDocument {
  return { issuer: config.issuer, jwks_uri: config.jwksUri, id_token_signing_alg_values_supported: signingAlgorithms(keys) };
}

/**
 * The discovery document of the set being served, built once per set (the first request after a
 * new snapshot pays one JSON.parse of the set; the others pick the prepared representation).
 * Last-Modified is the set's, or the configuration's time when later (a changed JWKS_ISSUER must
 * not be answered 304 to an If-Modified-Since); the ETag is the document's bytes' digest, like
 * every other representation.
 */
export class DiscoveryDocuments {
  private last: { readonly set: Representation; readonly document: Representation } | undefined;

  constructor(
    private readonly config: DiscoveryConfig,
    private readonly configuredAt: Date,
  ) {}

  for(set: Representation): Representation {
    if (this.last?.set === set) return this.last.document;
    const { keys } = JSON.parse(set.bytes.toString('utf8')) as { keys: KeyAlgorithm[] };
    const bytes = Buffer.from(JSON.stringify(discoveryDocument(this.config, keys)));
    const lastModified = set.lastModified > this.configuredAt ? set.lastModified : this.configuredAt;
    const document = representationOf(bytes, lastModified);
    this.last = { set, document };
    return document;
  }
}
