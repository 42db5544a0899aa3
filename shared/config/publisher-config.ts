import type { X509Certificate } from 'node:crypto';
import { parsePemBundle } from '../jwks/x509.js';
import { readCipherTrustConfig, readPemFile, type CipherTrustConfig } from './ciphertrust-config.js';
import { EnvReader, type Env } from './env.js';
import { LOG_LEVELS, type LogLevel } from './serving-config.js';
import { readStoreConfig, type StoreConfig } from './store-config.js';

/** What one publication cycle needs: shared by the key-rotated function and the jwks-refresh CLI. */
export interface PublisherConfig {
  readonly ciphertrust: CipherTrustConfig;
  readonly store: StoreConfig;
  /** A Deactivated signing key stays published this long after its deactivation date. */
  readonly retainDeactivatedMs: number;
  /** Publishing a set with no key is refused unless this is true. */
  readonly allowEmpty: boolean;
  /** JWKS_MAX_BYTES: a larger set is refused (serving refuses it unread). */
  readonly maxSetBytes: number;
  /** JWKS_MAX_KEYS: a set with more keys is refused; some partners cap the keys they accept. */
  readonly maxKeys: number;
  readonly logLevel: LogLevel;
  /**
   * The bank's CAs (JWKS_CERT_TRUST_ANCHORS, a PEM bundle file). A key's certificate from CM is
   * published (x5c) only when it chains up to one of them; unset, no certificate is published.
   */
  readonly certificateAnchors: readonly X509Certificate[];
}

/** Extra settings of the key-rotated HTTP function. */
export interface KeyRotatedConfig extends PublisherConfig {
  /** When set, every event must carry `Authorization: Bearer <secret>`. */
  readonly sharedSecret: string | undefined;
  readonly maxEventBytes: number;
}

const HOUR_MS = 3_600_000;
const MIN_SECRET_LENGTH = 32;

/** Throws ConfigError naming every bad variable. */
export function loadPublisherConfig(env: Env, cwd: string = process.cwd()): PublisherConfig {
  const reader = new EnvReader(env);
  const config = readPublisherConfig(reader, cwd);
  reader.finish();
  return config;
}

export function loadKeyRotatedConfig(env: Env, cwd: string = process.cwd()): KeyRotatedConfig {
  const reader = new EnvReader(env);
  const publisher = readPublisherConfig(reader, cwd);
  const sharedSecret = reader.secret('KEY_ROTATED_SHARED_SECRET');
  if (sharedSecret !== undefined && sharedSecret.length < MIN_SECRET_LENGTH) {
    reader.problem('KEY_ROTATED_SHARED_SECRET', `must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  const config: KeyRotatedConfig = {
    ...publisher,
    sharedSecret,
    maxEventBytes: reader.integer('KEY_ROTATED_MAX_EVENT_BYTES', 64 * 1024, { min: 1024, max: 1024 * 1024 }),
  };
  reader.finish();
  return config;
}

function readPublisherConfig(reader: EnvReader, cwd: string): PublisherConfig {
  return {
    ciphertrust: readCipherTrustConfig(reader),
    store: readStoreConfig(reader, cwd),
    retainDeactivatedMs: reader.durationMs('JWKS_RETAIN_DEACTIVATED', 48 * HOUR_MS, { minMs: 0, maxMs: 365 * 24 * HOUR_MS }),
    allowEmpty: reader.boolean('JWKS_ALLOW_EMPTY', false),
    maxSetBytes: reader.integer('JWKS_MAX_BYTES', 4 * 1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
    // OCI API Gateway accepts 10 keys; 20 leaves room for a rotation's Pre-Active and retained keys.
    maxKeys: reader.integer('JWKS_MAX_KEYS', 20, { min: 1, max: 1000 }),
    logLevel: reader.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    certificateAnchors: readTrustAnchors(reader),
  };
}

function readTrustAnchors(reader: EnvReader): X509Certificate[] {
  const pem = readPemFile(reader, 'JWKS_CERT_TRUST_ANCHORS');
  if (pem === undefined) return [];
  const { certificates, unreadable } = parsePemBundle(pem);
  if (certificates.length === 0 || unreadable > 0) {
    reader.problem('JWKS_CERT_TRUST_ANCHORS', `must be a PEM bundle of CA certificates (${certificates.length} read, ${unreadable} unreadable)`);
    return [];
  }
  const notCa = certificates.find((certificate) => !certificate.ca);
  if (notCa !== undefined) reader.problem('JWKS_CERT_TRUST_ANCHORS', `holds a certificate that is not a CA (${notCa.subject.replace(/\n/g, ', ')})`);
  return certificates;
}
