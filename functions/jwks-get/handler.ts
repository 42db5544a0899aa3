/** jwks-get: GET /jwks, the whole published JWK Set. Thin adapter; the work is in shared/. */
import type { RequestHandler } from '../../shared/http/serving-handler.js';
import type { Logger } from '../../shared/observability/logger.js';
import { exitOnConfigError } from '../../shared/config/exit-on-config-error.js';
import { startServingFunction } from '../../shared/http/serving-runtime.js';

const runtime = exitOnConfigError('jwks-get', () => startServingFunction('jwks-get', 'set', process.env));

export const handler: RequestHandler = runtime.handler;
export const logger: Logger = runtime.logger;
