/**
 * event-dead-letter: the Triggers' dead-letter sink. Logs every event Knative could not deliver
 * to key-rotated as an audit record. No store, no CipherTrust access.
 */
import { EnvReader } from '../../shared/config/env.js';
import type { RequestHandler } from '../../shared/http/serving-handler.js';
import { exitOnConfigError } from '../../shared/config/exit-on-config-error.js';
import { LOG_LEVELS } from '../../shared/config/serving-config.js';
import { createDeadLetterHandler } from '../../shared/http/dead-letter-handler.js';
import { createLogger, type Logger } from '../../shared/observability/logger.js';

const logLevel = exitOnConfigError('event-dead-letter', () => {
  const env = new EnvReader(process.env);
  for (const name of env.namesWithPrefix('CIPHERTRUST_')) env.problem(name, 'must not be set: the dead-letter sink never talks to CipherTrust Manager');
  const level = env.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  env.finish();
  return level;
});

export const logger: Logger = createLogger({ service: 'event-dead-letter', level: logLevel });
export const handler: RequestHandler = createDeadLetterHandler(logger);
