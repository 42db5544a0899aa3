/** jwk-get: GET /jwk/{kid}, one published key. Thin adapter; the work is in shared/. */
import type { RequestHandler } from '../../shared/http/serving-handler.js';
import type { Logger } from '../../shared/observability/logger.js';
import { exitOnConfigError } from '../../shared/config/exit-on-config-error.js';
import { startServingFunction } from '../../shared/http/serving-runtime.js';

const runtime = exitOnConfigError('jwk-get', () => startServingFunction('jwk-get', 'key', process.env));

export const handler: RequestHandler = runtime.handler;
export const logger: Logger = runtime.logger;
