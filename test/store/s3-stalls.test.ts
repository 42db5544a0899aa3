import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3KeySetStore } from '../../shared/store/s3-store.js';
import { KEY_SET_OBJECT, StoreError, keyObjectName } from '../../shared/store/store.js';
import { startS3Server, type S3TestServer } from '../support/s3-server.js';

type Mode = 'pass' | 'no-answer' | 'stall-body';

/**
 * A proxy in front of a real S3 server that can stop answering: before the status line, or after
 * the headers and the first bytes of the body. Without a deadline of its own, an S3 client waits
 * for ever on either (the SDK's requestTimeout only warns), and the serving loop or a publication
 * with it.
 */
async function startStallingProxy(target: URL): Promise<{ url: string; setMode(mode: Mode): void; close(): Promise<void> }> {
  let mode: Mode = 'pass';
  const server = http.createServer((request, response) => {
    if (mode === 'no-answer') {
      request.resume();
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        if (mode === 'stall-body') {
          answer.once('data', (chunk: Buffer) => response.write(chunk.subarray(0, 1)));
          return;
        }
        answer.pipe(response);
      },
    );
    request.pipe(upstream);
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setMode(next) {
      mode = next;
    },
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

async function failureOf(operation: Promise<unknown>): Promise<string> {
  try {
    await operation;
  } catch (error) {
    if (error instanceof StoreError) return error.failure;
    throw error;
  }
  throw new Error('the operation did not fail');
}

describe('s3 store against a server that stops answering', () => {
  let s3: S3TestServer;
  let proxy: Awaited<ReturnType<typeof startStallingProxy>>;
  let store: S3KeySetStore;

  beforeAll(async () => {
    s3 = await startS3Server();
    Object.assign(process.env, s3.env);
    proxy = await startStallingProxy(new URL(s3.endpoint));
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
  afterEach(() => proxy.setMode('pass'));

  it('times out a read, a write, a removal and a listing that get no answer', async () => {
    proxy.setMode('no-answer');
    expect(await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 }))).toBe('timeout');
    expect(await failureOf(store.write(KEY_SET_OBJECT, Buffer.from('{"keys":[]}')))).toBe('timeout');
    expect(await failureOf(store.remove(keyObjectName('a')))).toBe('timeout');
    expect(await failureOf(store.list())).toBe('timeout');
  });

  it('times out a read whose body stalls after the headers', async () => {
    proxy.setMode('stall-body');
    expect(await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 }))).toBe('timeout');
  });

  it('reads normally again once the server answers', async () => {
    proxy.setMode('no-answer');
    expect(await failureOf(store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 }))).toBe('timeout');
    proxy.setMode('pass');
    const result = await store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 });
    expect(result.kind).toBe('found');
    if (result.kind === 'found') expect(JSON.parse(result.object.body.toString())).toMatchObject({ keys: [] });
  });
});
