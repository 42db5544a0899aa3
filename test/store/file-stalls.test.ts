/**
 * A file store whose file system stops answering, as a hung NFS mount does. A FIFO stands in for
 * the hung file: opening it for reading blocks in the kernel, on a libuv thread, until a writer
 * comes, exactly like an open() on a mount whose server went away. Without a deadline the caller
 * would wait for good: the serving loop would stop revalidating without a word.
 */
import { execFileSync } from 'node:child_process';
import { constants, openSync, closeSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { KEY_SET_OBJECT, StoreError } from '../../shared/store/store.js';
import { publish } from '../support/backends.js';
import { eventually, metricValue, rawRequest } from '../support/http.js';
import { ecKey } from '../support/keys.js';
import { startFunction, type RunningFunction } from '../support/processes.js';

const MAX_BYTES = 1024 * 1024;

async function failureOf(operation: Promise<unknown>): Promise<StoreError> {
  try {
    await operation;
  } catch (error) {
    if (error instanceof StoreError) return error;
    throw error;
  }
  throw new Error('the operation did not fail');
}

/** Puts a FIFO where jwks.json was (atomically, by rename), so the next open of it hangs. */
async function hangKeySet(directory: string): Promise<string> {
  const fifo = join(directory, 'hung-fifo');
  execFileSync('mkfifo', [fifo]);
  const path = join(directory, KEY_SET_OBJECT);
  await rename(fifo, path);
  return path;
}

/** Lets a reader blocked on the FIFO through (its open completes), as a server coming back would. */
function releaseReaders(path: string): void {
  closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
}

describe('file store on a file system that stops answering', () => {
  let directory: string;
  let store: FileKeySetStore;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'jwks-file-stalls-'));
    store = new FileKeySetStore(directory, { timeoutMs: 300 });
    await publish(store, [(await ecKey('P-256')).jwk]);
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  it('times out a read that hangs, starts nothing new while it is stuck, and works again once it returns', async () => {
    const path = await hangKeySet(directory);
    const started = Date.now();
    const hung = await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: MAX_BYTES }));
    expect(hung.failure).toBe('timeout');
    expect(hung.message).toContain('no answer from the file system within 300 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);

    // The first read still holds a thread: the next operations are refused at once, not queued.
    const refused = await failureOf(store.list());
    expect(refused.failure).toBe('timeout');
    expect(refused.message).toContain('not started');

    releaseReaders(path);
    await eventually(async () => (await store.list().then(() => true, () => false)), 5000);
    const bytes = await publish(store, [(await ecKey('P-256')).jwk]);
    const read = await store.read(KEY_SET_OBJECT, { maxBytes: MAX_BYTES });
    expect(read.kind === 'found' && read.object.body.equals(bytes)).toBe(true);
  });
});

describe('jwks-get on a file store whose file system stops answering', () => {
  let directory: string;
  let jwksGet: RunningFunction | undefined;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'jwks-file-stalls-fn-'));
  });
  afterAll(async () => {
    await jwksGet?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('keeps serving its set, counts the timeouts, and revalidates again once the file system answers', async () => {
    const store = new FileKeySetStore(directory);
    const served = await publish(store, [(await ecKey('P-256')).jwk]);
    jwksGet = await startFunction({
      host: 'lean',
      target: 'jwks-get',
      env: { JWKS_STORE: `file://${directory}`, JWKS_FILE_TIMEOUT_MS: '300', JWKS_REVALIDATE_MS: '100' },
      waitForReady: true,
    });
    const url = jwksGet.url;
    const timeouts = async (): Promise<number> => metricValue((await rawRequest(url, '/metrics')).body.toString(), 'jwks_store_errors_total{function="jwks-get",reason="timeout"}');
    expect(await timeouts()).toBe(0);

    const path = await hangKeySet(directory);
    await eventually(async () => (await timeouts()) >= 2, 10_000);
    const answer = await rawRequest(url, '/jwks');
    expect(answer.status).toBe(200);
    expect(answer.body.equals(served)).toBe(true);

    // The server comes back with a new set: served once the stuck read has returned.
    releaseReaders(path);
    const next = await publish(store, [(await ecKey('P-256')).jwk]);
    await eventually(async () => (await rawRequest(url, '/jwks')).body.equals(next), 10_000);
  });
});
