import { EnvReader, type Env } from './env.js';
import { readDiscoveryConfig, type DiscoveryConfig } from './discovery-config.js';
import { readStoreConfig, type StoreConfig } from './store-config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServingConfig {
  readonly store: StoreConfig;
  /** Cache-Control max-age of a served set or key (JWKS_MAX_AGE). */
  readonly maxAgeSeconds: number;
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
  /** Cache-Control max-age of a 404 for an unknown kid: short, so a just-published key is found. */
  readonly notFoundMaxAgeSeconds: number;
  /** The store is checked at most this often; requests never touch it. */
  readonly revalidateMs: number;
  readonly maxSetBytes: number;
  readonly logLevel: LogLevel;
  /** JWKS_ISSUER and JWKS_PUBLIC_URL; undefined when discovery is not served. */
  readonly discovery: DiscoveryConfig | undefined;
}

const DAY = 86_400;

/**
 * Reads the serving functions' configuration. Throws ConfigError naming every bad variable. A
 * CIPHERTRUST_* variable is refused outright: serving functions must never hold key-manager access.
 */
export function loadServingConfig(env: Env, cwd: string = process.cwd()): ServingConfig {
  const reader = new EnvReader(env);
  for (const name of reader.namesWithPrefix('CIPHERTRUST_')) {
    reader.problem(name, 'must not be set for a serving function: only key-rotated talks to CipherTrust Manager');
  }
  const config: ServingConfig = {
    store: readStoreConfig(reader, cwd),
    maxAgeSeconds: reader.integer('JWKS_MAX_AGE', 300, { min: 0, max: DAY }),
    staleWhileRevalidateSeconds: reader.integer('JWKS_STALE_WHILE_REVALIDATE', 60, { min: 0, max: DAY }),
    staleIfErrorSeconds: reader.integer('JWKS_STALE_IF_ERROR', DAY, { min: 0, max: 7 * DAY }),
    notFoundMaxAgeSeconds: reader.integer('JWKS_NOT_FOUND_MAX_AGE', 10, { min: 0, max: 3600 }),
    revalidateMs: reader.integer('JWKS_REVALIDATE_MS', 1000, { min: 10, max: 3_600_000 }),
    maxSetBytes: reader.integer('JWKS_MAX_BYTES', 4 * 1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
    logLevel: reader.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    discovery: readDiscoveryConfig(reader),
  };
  reader.finish();
  return config;
}
