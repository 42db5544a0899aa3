import { S3KeySetStore } from '../../shared/store/s3-store.js';
import { KEY_SET_OBJECT, StoreError, keyObjectName } from '../../shared/store/store.js';
import { startS3FaultProxy, type ProxyAnswer, type S3FaultProxy } from '../support/s3-fault-proxy.js';
import { startS3Server, type S3TestServer } from '../support/s3-server.js';

async function failureOf(operation: Promise<unknown>): Promise<string> {
  try {
    await operation;
  } catch (error) {
    if (error instanceof StoreError) return error.failure;
    throw error;
  }
  throw new Error('the operation did not fail');
}

/**
 * A real S3 server behind a proxy that can stop answering: before the status line, or after the
 * headers and the first bytes of the body. Without a deadline of its own, an S3 client waits for
 * ever on either (the SDK's requestTimeout only warns), and the serving loop or a publication with it.
 */
describe('s3 store against a server that stops answering', () => {
  let s3: S3TestServer;
  let proxy: S3FaultProxy;
  const setMode = (answer: ProxyAnswer): void => proxy.setRule(() => answer);
  let store: S3KeySetStore;

  beforeAll(async () => {
    s3 = await startS3Server();
    Object.assign(process.env, s3.env);
    proxy = await startS3FaultProxy(new URL(s3.endpoint));
    store = new S3KeySetStore({
      bucket: s3.bucket,
      prefix: 'stalls/',
      endpoint: proxy.url,
      region: 'us-east-1',
      forcePathStyle: true,
      timeoutMs: 300,
      maxAttempts: 2,
    });
    await store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify({ keys: [], padding: 'x'.repeat(4096) })));
  });
  afterAll(async () => {
    store.close();
    await proxy.close();
    await s3.close();
  });
  afterEach(() => proxy.pass());

  it('times out a read, a write, a removal and a listing that get no answer', async () => {
    setMode('no-answer');
    expect(await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 }))).toBe('timeout');
    expect(await failureOf(store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[]}')))).toBe('timeout');
    expect(await failureOf(store.remove(keyObjectName('a')))).toBe('timeout');
    expect(await failureOf(store.list())).toBe('timeout');
  });

  it('times out a read whose body stalls after the headers', async () => {
    setMode('stall-body');
    expect(await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 }))).toBe('timeout');
  });

  it('reads normally again once the server answers', async () => {
    setMode('no-answer');
    expect(await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 }))).toBe('timeout');
    setMode('pass');
    const result = await store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 });
    expect(result.kind).toBe('found');
    if (result.kind === 'found') expect(JSON.parse(result.object.body.toString())).toMatchObject({ keys: [] });
  });
});
