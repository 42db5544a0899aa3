/**
 * The publisher killed with SIGKILL in the middle of a publication on an S3 store, at each step of
 * the write order (shared/publisher/write-key-set.ts): a per-kid PUT, the jwks.json PUT (the commit
 * point), the jwks-sources.json PUT, the DELETE of the stale per-kid object. Killed from outside:
 * the proxy in front of s3rver kills the publisher (jwks-refresh, or key-rotated answering a ping)
 * when that request arrives, before forwarding it.
 *
 * Every run goes from set A to set B (kill-scene.ts). While it runs and after it dies, jwks-get and
 * jwk-get (own processes) and a direct reader of the bucket only ever see A or B, whole; the dead
 * run leaves a consistent store; and the next run leaves exactly what an uninterrupted publication
 * leaves.
 */
import { openBackend } from '../support/backends.js';
import { startFunction, startRefresh } from '../support/processes.js';
import { waitForFirstCycle } from '../support/publisher-stack.js';
import { startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.js';
import { killedThenRepaired, repairWithRefresh, startScene, type Scene } from './kill-scene.js';
import { publisherReport } from './support.js';

describe('the publisher killed mid-publication on an S3 store (by the proxy, as a request arrives)', () => {
  let world: Scene | undefined;
  let proxy: S3FaultProxy | undefined;

  beforeAll(async () => {
    const backend = await openBackend('s3');
    proxy = await startS3FaultProxy(new URL(backend.s3!.endpoint));
    world = await startScene('s3', { backend, env: { S3_ENDPOINT: proxy.url } });
  });
  afterAll(async () => {
    await world?.serving.stop();
    await world?.stack.close();
    await proxy?.close();
  });
  afterEach(() => proxy!.pass());

  /** Kills `pid` when the nth request of this method for an object arrives; never forwards that one. */
  function killAt(method: 'PUT' | 'DELETE', nth: number, pid: () => number): { killedKey: () => string | undefined } {
    let count = 0;
    let killedKey: string | undefined;
    proxy!.setRule((request) => {
      if (request.method !== method || request.key === '' || killedKey !== undefined || ++count !== nth) return killedKey === undefined ? 'pass' : 'no-answer';
      killedKey = request.key;
      process.kill(pid(), 'SIGKILL');
      return 'no-answer';
    });
    return { killedKey: () => killedKey };
  }

  const points: { method: 'PUT' | 'DELETE'; nth: number; object: RegExp; committed: 'a' | 'b' }[] = [
    { method: 'PUT', nth: 1, object: /\/jwk-.+\.json$/, committed: 'a' },
    { method: 'PUT', nth: 3, object: /\/jwks\.json$/, committed: 'a' },
    { method: 'PUT', nth: 4, object: /\/jwks-sources\.json$/, committed: 'b' },
    { method: 'DELETE', nth: 1, object: /\/jwk-.+\.json$/, committed: 'b' },
  ];

  it.each(points)('jwks-refresh killed at $method #$nth: readers see A or B whole, the store is consistent, the next run leaves B', async ({ method, nth, object, committed }) => {
    await killedThenRepaired(
      world!,
      committed,
      async () => {
        let pid = 0;
        const kill = killAt(method, nth, () => pid);
        const run = startRefresh([], world!.stack.env);
        pid = run.pid;
        const result = await run.result;
        // A run that ended before the request it was to be killed at says why (exit code, logs).
        if (kill.killedKey() === undefined) throw new Error(`jwks-refresh ended (code ${result.code}, signal ${result.signal}) before ${method} #${nth}:\n${result.stdout}${result.stderr}`);
        expect(kill.killedKey()).toMatch(object);
        proxy!.pass();
        return result;
      },
      () => repairWithRefresh(world!.stack.env),
    );
  });

  it('key-rotated killed at the jwks.json PUT of a ping: readers see A whole, and its restart publishes B', async () => {
    const { stack } = world!;
    let restarted: Awaited<ReturnType<typeof startFunction>> | undefined;
    try {
      await killedThenRepaired(
        world!,
        'a',
        async () => {
          const kill = killAt('PUT', 3, () => stack.keyRotated.pid);
          await expect(stack.ping()).rejects.toThrow();
          expect(kill.killedKey()).toMatch(/\/jwks\.json$/);
          proxy!.pass();
          return undefined;
        },
        async () => {
          // A new key-rotated publishes once at start: that is the repair, before any event. The
          // per-kid files the dead one wrote are kept; jwks.json and the sources record are written.
          restarted = await startFunction({ host: 'lean', target: 'key-rotated', env: stack.env });
          await waitForFirstCycle(restarted.url);
          expect(publisherReport(restarted).audits().at(-1)).toMatchObject({ outcome: 'published', filesWritten: 2, filesRemoved: 1 });
        },
      );
    } finally {
      await restarted?.stop();
    }
  });
});
