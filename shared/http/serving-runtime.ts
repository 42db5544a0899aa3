import { loadServingConfig } from '../config/serving-config.js';
import type { Env } from '../config/env.js';
import { DeferredLogger } from '../observability/deferred-logger.js';
import { ServingMetrics } from '../observability/serving-metrics.js';
import { KeySetCache, type KeySetSnapshot } from '../serving/key-set-cache.js';
import { RevalidationLoop } from '../serving/revalidation-loop.js';
import { openStore } from '../store/open-store.js';
import { createServingHandler, type RequestHandler, type ServedResource } from './serving-handler.js';

/** The latest the logger loads after start when no key set has been served by then. */
export const LOGGER_LOAD_DEADLINE_MS = 1_000;

export interface ServingRuntime {
  readonly handler: RequestHandler;
  /** Loads pino after the first answer that carries the key set (or LOGGER_LOAD_DEADLINE_MS). */
  readonly logger: DeferredLogger;
  /** Resolves when the first load attempt has finished (successful or not). */
  readonly firstCheck: Promise<void>;
  stop(): void;
}

/**
 * Wires one serving function: configuration, store, cache, revalidation loop, metrics, handler.
 * Throws ConfigError before anything starts when the environment is not acceptable.
 */
export function startServingFunction(functionName: string, resource: ServedResource, env: Env): ServingRuntime {
  const config = loadServingConfig(env);
  // pino is loaded after the first answer that carries the key set, not before it (issue 6:
  // about 20 ms of a cold start), and within LOGGER_LOAD_DEADLINE_MS whatever happens.
  const logger = new DeferredLogger((now) =>
    import('../observability/logger.js').then(({ createLogger }) => createLogger({ service: functionName, level: config.logLevel, now })),
  );
  logger.loadWithin(LOGGER_LOAD_DEADLINE_MS);
  const store = openStore(config.store);
  // The metrics read the served snapshot at scrape time; the cache reports its events to them.
  const snapshot = (): KeySetSnapshot | undefined => cache.current();
  const metrics = new ServingMetrics(functionName, snapshot);
  const cache = new KeySetCache({
    store,
    logger,
    events: metrics,
    maxSetBytes: config.maxSetBytes,
    loadKeyFiles: resource === 'key',
  });
  const loop = new RevalidationLoop(
    () => cache.refresh(),
    config.revalidateMs,
    (error) => logger.error({ event: 'revalidation_failed', err: error }, 'key set check failed unexpectedly; will retry'),
  );
  logger.info(
    {
      event: 'starting',
      store: store.location,
      revalidateMs: config.revalidateMs,
      maxAgeSeconds: config.maxAgeSeconds,
      ...(resource === 'set' && { discoveryIssuer: config.discovery?.issuer ?? null }),
    },
    `${functionName} starting`,
  );
  const handler = createServingHandler({
    resource,
    cache,
    metrics,
    policy: config,
    retryAfterSeconds: Math.max(1, Math.ceil(config.revalidateMs / 1000)),
    logger,
    discovery: resource === 'set' ? config.discovery : undefined,
    afterServed: () => {
      // After the answer is out: the load blocks the event loop while pino's code runs.
      if (!logger.loaded) setImmediate(() => void logger.load());
    },
  });
  return { handler, logger, firstCheck: loop.start(), stop: () => loop.stop() };
}
