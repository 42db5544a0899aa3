/**
 * event-relay: forwards rotation CloudEvents from producers outside the cluster to the Broker,
 * after checking their shared secret. No store, no CipherTrust access.
 */
import { EnvReader } from '../../shared/config/env.js';
import type { RequestHandler } from '../../shared/http/serving-handler.js';
import { exitOnConfigError } from '../../shared/config/exit-on-config-error.js';
import { LOG_LEVELS } from '../../shared/config/serving-config.js';
import { createRelayHandler } from '../../shared/http/relay-handler.js';
import { createLogger, type Logger } from '../../shared/observability/logger.js';

const MIN_SECRET_LENGTH = 32;

const relay = exitOnConfigError('event-relay', () => {
  const env = new EnvReader(process.env);
  for (const name of env.namesWithPrefix('CIPHERTRUST_')) env.problem(name, 'must not be set: the relay never talks to CipherTrust Manager');
  const sink = env.httpUrl('K_SINK');
  if (env.raw('K_SINK') === undefined) env.problem('K_SINK', 'must be set (a SinkBinding injects the Broker address)');
  const sharedSecret = env.secret('EVENT_RELAY_SHARED_SECRET');
  if (sharedSecret === undefined || sharedSecret.length < MIN_SECRET_LENGTH) {
    env.problem('EVENT_RELAY_SHARED_SECRET', `must be set, at least ${MIN_SECRET_LENGTH} characters`);
  }
  const level = env.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  const forwardTimeoutMs = env.integer('EVENT_RELAY_TIMEOUT_MS', 5000, { min: 100, max: 60_000 });
  env.finish();
  const logger = createLogger({ service: 'event-relay', level });
  const handler = createRelayHandler({ sink: sink ?? '', sharedSecret: sharedSecret ?? '', logger, maxEventBytes: 64 * 1024, forwardTimeoutMs });
  return { handler, logger };
});

export const handler: RequestHandler = relay.handler;
export const logger: Logger = relay.logger;
