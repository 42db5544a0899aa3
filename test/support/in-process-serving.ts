import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadServingConfig } from '../../shared/config/serving-config.js';
import { answerRefusedRequests } from '../../shared/http/node-host.js';
import { createServingHandler, type ServedResource } from '../../shared/http/serving-handler.js';
import { ServingMetrics } from '../../shared/observability/serving-metrics.js';
import { KeySetCache, type KeySetSnapshot } from '../../shared/serving/key-set-cache.js';
import { RevalidationLoop } from '../../shared/serving/revalidation-loop.js';
import type { KeySetStore, ObjectName, ReadOptions, ReadResult } from '../../shared/store/store.js';
import { capturingLogger } from './capture.js';

/** A real store with every call to it recorded: the boundary the serving functions read through. */
export class RecordingStore implements KeySetStore {
  /** Every name passed to read(), in order. */
  readonly reads: string[] = [];
  /** Every other call (write, remove, list): the serving side must make none. */
  readonly otherCalls: string[] = [];

  constructor(private readonly inner: KeySetStore) {}

  get location(): string {
    return this.inner.location;
  }
  read(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    this.reads.push(name);
    return this.inner.read(name, options);
  }
  write(name: ObjectName, body: Buffer): Promise<void> {
    this.otherCalls.push(`write ${name}`);
    return this.inner.write(name, body);
  }
  remove(name: ObjectName): Promise<void> {
    this.otherCalls.push(`remove ${name}`);
    return this.inner.remove(name);
  }
  list(): Promise<ObjectName[]> {
    this.otherCalls.push('list');
    return this.inner.list();
  }
}

/** jwks-get and jwk-get wired as serving-runtime.ts wires them, on a store the test hands in. */
export interface InProcessServing {
  readonly setUrl: string;
  readonly keyUrl: string;
  readonly store: RecordingStore;
  /** Log lines of both functions (request_failed would be an answer that crashed). */
  logText(): string;
  stop(): Promise<void>;
}

/**
 * The serving functions in this process, each on a node:http server on loopback, with the cache
 * and revalidation loop of production. `env` is the functions' environment (JWKS_STORE must name
 * the store, for the configuration; reads go to `store`).
 */
export async function startInProcessServing(store: KeySetStore, env: Record<string, string>): Promise<InProcessServing> {
  const config = loadServingConfig(env);
  const recording = new RecordingStore(store);
  const log = capturingLogger('in-process-serving');
  const servers: Server[] = [];
  const loops: RevalidationLoop[] = [];
  const start = async (name: string, resource: ServedResource): Promise<string> => {
    const metrics: ServingMetrics = new ServingMetrics(name, (): KeySetSnapshot | undefined => cache.current(), Date.now, { defaultMetrics: false });
    const cache: KeySetCache = new KeySetCache({ store: recording, logger: log.logger, events: metrics, maxSetBytes: config.maxSetBytes, loadKeyFiles: resource === 'key' });
    const loop = new RevalidationLoop(() => cache.refresh(), config.revalidateMs, (error) => log.logger.error({ event: 'revalidation_failed', err: error }, 'check failed'));
    loops.push(loop);
    await loop.start();
    const handler = createServingHandler({ resource, cache, metrics, policy: config, retryAfterSeconds: 1, logger: log.logger });
    // As the lean host serves it (node-host.ts), without its signal handlers.
    const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, handler);
    answerRefusedRequests(server);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const [setUrl, keyUrl] = await Promise.all([start('jwks-get', 'set'), start('jwk-get', 'key')]);
  return {
    setUrl,
    keyUrl,
    store: recording,
    logText: log.text,
    async stop() {
      loops.forEach((loop) => loop.stop());
      await Promise.all(
        servers.map((server) => {
          server.closeAllConnections();
          return new Promise((resolve) => server.close(resolve));
        }),
      );
    },
  };
}
