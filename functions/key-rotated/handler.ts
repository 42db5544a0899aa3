/**
 * key-rotated: POST / with CloudEvents (rotation events, hourly PingSource ticks) republishes the
 * key set from CipherTrust Manager. Registered as an HTTP function, not a cloudEvent one:
 * functions-framework 5.0.5 answers 500 to empty-bodied CloudEvents (a PingSource without data),
 * and the probes need GET. CloudEvents are parsed with the cloudevents SDK in shared/events/.
 */
import type { RequestHandler } from '../../shared/http/serving-handler.js';
import type { Logger } from '../../shared/observability/logger.js';
import { exitOnConfigError } from '../../shared/config/exit-on-config-error.js';
import { startKeyRotatedFunction } from '../../shared/http/key-rotated-runtime.js';

const runtime = exitOnConfigError('key-rotated', () => startKeyRotatedFunction(process.env));

export const handler: RequestHandler = runtime.handler;
export const logger: Logger = runtime.logger;
/** On SIGTERM, once drained: revokes the CM refresh token this process obtained (lean host only; functions-framework exits at once). */
export const beforeExit = (): Promise<void> => runtime.publisher.signOut();
