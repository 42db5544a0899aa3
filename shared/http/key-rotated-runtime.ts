import type { Env } from '../config/env.js';
import { loadKeyRotatedConfig } from '../config/publisher-config.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createPublisher, type Publisher } from '../publisher/create-publisher.js';
import type { CycleResult, CycleTrigger } from '../publisher/publication-cycle.js';
import { RunCoalescer } from '../publisher/run-coalescer.js';
import { createEventHandler, type PublisherStatus } from './event-handler.js';
import type { RequestHandler } from './serving-handler.js';

export interface KeyRotatedRuntime {
  readonly handler: RequestHandler;
  readonly logger: Logger;
  readonly publisher: Publisher;
}

/**
 * Wires key-rotated: configuration, CM access, store, the coalesced publication cycle and the
 * event handler. Throws ConfigError before anything starts when the environment is not acceptable.
 */
export function startKeyRotatedFunction(env: Env): KeyRotatedRuntime {
  const config = loadKeyRotatedConfig(env);
  const logger = createLogger({ service: 'key-rotated', level: config.logLevel });
  const publisher = createPublisher(config, logger);
  let status: Omit<PublisherStatus, 'publishing'> = { lastSuccess: undefined, lastResult: undefined, lastResultAt: undefined };
  const coalescer = new RunCoalescer<CycleTrigger, CycleResult>(async (triggers) => {
    const result = await publisher.cycle.run(triggers);
    const at = new Date();
    const succeeded = result.outcome === 'published' || result.outcome === 'unchanged';
    status = { lastSuccess: succeeded ? at : status.lastSuccess, lastResult: result, lastResultAt: at };
    return result;
  });
  logger.info(
    {
      event: 'starting',
      store: publisher.store.location,
      ciphertrust: config.ciphertrust.urls,
      grant: config.ciphertrust.grant.type,
      keySelector: config.ciphertrust.keySelector,
      retainDeactivatedMs: config.retainDeactivatedMs,
      sharedSecret: config.sharedSecret !== undefined,
    },
    'key-rotated starting',
  );
  const handler = createEventHandler({
    requestPublication: (triggers) => coalescer.request(...triggers),
    requestChangeCheck: (eventId) => publisher.changeCheck.tick((trigger) => coalescer.request(trigger), eventId),
    status: () => ({ ...status, publishing: coalescer.busy }),
    metrics: publisher.metrics,
    logger,
    sharedSecret: config.sharedSecret,
    maxEventBytes: config.maxEventBytes,
  });
  // Publish once at start: a fresh deployment then has a set within seconds (the serving
  // functions are not ready before), and a restart catches up with anything missed while down.
  // The outcome is in the audit record and /readyz; a failure waits for the next event or ping.
  coalescer.request({ kind: 'startup' }).then(
    () => undefined,
    () => undefined,
  );
  return { handler, logger, publisher };
}
