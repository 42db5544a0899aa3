import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeKey, serializeKeySet } from '../../shared/jwks/serialize.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { S3KeySetStore } from '../../shared/store/s3-store.js';
import { KEY_SET_OBJECT, keyObjectName, type KeySetStore } from '../../shared/store/store.js';
import { startS3Server, type S3TestServer } from './s3-server.js';

export type BackendName = 'file' | 's3';

/** A real store of either kind, and the environment a function process needs to read it. */
export interface TestBackend {
  readonly name: BackendName;
  readonly store: KeySetStore;
  readonly env: Record<string, string>;
  /** file: the directory; s3: the scratch server. */
  readonly directory?: string;
  readonly s3?: S3TestServer;
  close(): Promise<void>;
}

export async function openBackend(name: BackendName): Promise<TestBackend> {
  if (name === 'file') {
    const directory = await mkdtemp(join(tmpdir(), 'jwks-store-'));
    return {
      name,
      directory,
      store: new FileKeySetStore(directory),
      env: { JWKS_STORE: `file://${directory}` },
      close: () => rm(directory, { recursive: true, force: true }),
    };
  }
  const s3 = await startS3Server();
  const prefix = 'partners/jwks';
  Object.assign(process.env, s3.env);
  const store = new S3KeySetStore({
    bucket: s3.bucket,
    prefix: `${prefix}/`,
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    timeoutMs: 5000,
    maxAttempts: 1,
  });
  return {
    name,
    s3,
    store,
    env: { ...s3.env, JWKS_STORE: `s3://${s3.bucket}/${prefix}`, S3_TIMEOUT_MS: '3000', S3_MAX_ATTEMPTS: '1' },
    async close() {
      store.close();
      await s3.close();
    },
  };
}

/** Publishes as the publisher does: per-kid files first, then the set. Returns the set's bytes. */
export async function publish(store: KeySetStore, keys: readonly PublicJwk[]): Promise<Buffer> {
  for (const key of keys) await store.write(keyObjectName(key.kid), serializeKey(key));
  const body = serializeKeySet(keys);
  await store.write(KEY_SET_OBJECT, body);
  return body;
}
