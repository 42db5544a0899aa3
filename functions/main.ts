/**
 * Entry point of the runtime image (`node dist/bundle/main.mjs`, bundled from this file by
 * build/bundle.mjs), with FUNCTION_TARGET naming the function. It loads the function's handler
 * module and hosts it on a bare node:http server (shared/http/node-host.ts). functions-framework (and the express stack under it) is never
 * loaded here: it costs start-up time and memory the lean host does not use. The same handlers
 * register with functions-framework in functions/<name>/index.ts for its hosts.
 */
import type { AddressInfo } from 'node:net';
import { EnvReader } from '../shared/config/env.js';
import { LOG_LEVELS } from '../shared/config/serving-config.js';
import { exitOnConfigError } from '../shared/config/exit-on-config-error.js';
import { hostHandler } from '../shared/http/node-host.js';
import type { RequestHandler } from '../shared/http/serving-handler.js';
import { createLogger } from '../shared/observability/logger.js';

type HandlerModule = { handler?: RequestHandler };

/**
 * Only these modules can be loaded: the target never becomes a path. Literal import() calls, so
 * a bundler sees each handler and can put it in a chunk of its own.
 */
const FUNCTION_MODULES: Readonly<Record<string, () => Promise<HandlerModule>>> = {
  'jwks-get': () => import('./jwks-get/handler.js'),
  'jwk-get': () => import('./jwk-get/handler.js'),
  'key-rotated': () => import('./key-rotated/handler.js'),
  'event-dead-letter': () => import('./event-dead-letter/handler.js'),
  'event-relay': () => import('./event-relay/handler.js'),
};

const settings = exitOnConfigError('host', () => {
  const env = new EnvReader(process.env);
  const target = env.oneOf('FUNCTION_TARGET', Object.keys(FUNCTION_MODULES), '');
  if (target === '') env.problem('FUNCTION_TARGET', `must be set to one of ${Object.keys(FUNCTION_MODULES).join(', ')}`);
  const port = env.integer('PORT', 8080, { min: 0, max: 65_535 });
  const host = env.raw('HOST');
  const shutdownGraceMs = env.integer('SHUTDOWN_GRACE_MS', 10_000, { min: 0, max: 120_000 });
  const logLevel = env.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  env.finish();
  return { target, port, host, shutdownGraceMs, logLevel };
});

const loadHandlerModule = FUNCTION_MODULES[settings.target];
if (loadHandlerModule === undefined) throw new Error(`no handler module for ${settings.target}`);
const { handler } = await loadHandlerModule();
if (handler === undefined) throw new Error(`function ${settings.target} exports no handler`);
const logger = createLogger({ service: settings.target, level: settings.logLevel });
const server = await hostHandler(handler, { ...settings, logger });
const { address, port } = server.address() as AddressInfo;
logger.info({ event: 'listening', address, port }, `${settings.target} listening on ${address}:${port}`);
