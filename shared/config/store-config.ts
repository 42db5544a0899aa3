import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EnvReader } from './env.js';
import { FILE_STORE_TIMEOUT_MS } from '../store/file-store.js';
import type { S3StoreOptions } from '../store/s3-store.js';

export type StoreConfig = { readonly kind: 'file'; readonly root: string; readonly timeoutMs: number } | ({ readonly kind: 's3' } & S3StoreOptions);

/** Default for local runs; deployments set JWKS_STORE explicitly (file:///data or s3://...). */
export const DEFAULT_STORE = './data';

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_.-]+$/;

/**
 * JWKS_STORE picks the backend: `file:///abs/dir` or a plain path for a directory (the PVC),
 * `s3://bucket/prefix` for object storage (with S3_ENDPOINT, AWS_REGION and the AWS credential
 * variables), read by the AWS SDK itself.
 */
export function readStoreConfig(env: EnvReader, cwd: string): StoreConfig {
  const value = env.string('JWKS_STORE', DEFAULT_STORE);
  if (value.startsWith('s3://')) return readS3Config(env, value);
  if (value.startsWith('file:')) {
    try {
      const url = new URL(value);
      if (url.host !== '' && url.host !== 'localhost') throw new Error('remote host');
      return { kind: 'file', root: fileURLToPath(url), timeoutMs: fileTimeout(env) };
    } catch {
      env.problem('JWKS_STORE', `must be file:///absolute/path, a directory path or s3://bucket/prefix (got ${JSON.stringify(value)})`);
      return { kind: 'file', root: resolve(cwd, DEFAULT_STORE), timeoutMs: fileTimeout(env) };
    }
  }
  if (value.includes('://')) {
    env.problem('JWKS_STORE', `has an unsupported scheme (use file:// or s3://)`);
  }
  return { kind: 'file', root: isAbsolute(value) ? value : resolve(cwd, value), timeoutMs: fileTimeout(env) };
}

/** The deadline of one file store operation: a hung NFS mount must give timeouts, not a hang. */
function fileTimeout(env: EnvReader): number {
  return env.integer('JWKS_FILE_TIMEOUT_MS', FILE_STORE_TIMEOUT_MS, { min: 100, max: 120_000 });
}

function readS3Config(env: EnvReader, value: string): StoreConfig {
  const [bucket = '', ...segments] = value.slice('s3://'.length).split('/').filter((part, index) => index === 0 || part !== '');
  if (!BUCKET.test(bucket)) env.problem('JWKS_STORE', `has an invalid bucket name ${JSON.stringify(bucket)}`);
  if (segments.some((segment) => !PREFIX_SEGMENT.test(segment) || segment === '.' || segment === '..')) {
    env.problem('JWKS_STORE', 'has an invalid prefix (letters, digits, "_", "-", "." per segment; no "." or ".." segments)');
  }
  return {
    kind: 's3',
    bucket,
    prefix: segments.length > 0 ? `${segments.join('/')}/` : '',
    endpoint: env.httpUrl('S3_ENDPOINT'),
    region: env.raw('AWS_REGION') ?? env.raw('AWS_DEFAULT_REGION') ?? 'us-east-1',
    forcePathStyle: env.boolean('S3_FORCE_PATH_STYLE', true),
    timeoutMs: env.integer('S3_TIMEOUT_MS', 5000, { min: 100, max: 120_000 }),
    maxAttempts: env.integer('S3_MAX_ATTEMPTS', 3, { min: 1, max: 10 }),
  };
}
