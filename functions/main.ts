/**
 * Entry point of the runtime image (`node dist/bundle/main.cjs`, bundled from this file by
 * build/bundle.mjs). FUNCTION_TARGET names the function; its server module (functions/<name>/
 * server.ts: its handler on the lean host) is loaded, and nothing else: each one is bundled whole
 * into a file of its own, so a start reads one file of the function's code instead of a graph of
 * shared chunks. The same handlers register with functions-framework in functions/<name>/index.ts.
 */
import { EnvReader, type Env } from '../shared/config/env.js';
import { exitOnConfigError } from '../shared/config/exit-on-config-error.js';

/**
 * Only these modules can be loaded: the target never becomes a path. Literal import() calls, so
 * the bundler sees each one (and points it at the function's bundle).
 */
const FUNCTION_SERVERS: Readonly<Record<string, () => Promise<unknown>>> = {
  'jwks-get': () => import('./jwks-get/server.js'),
  'jwk-get': () => import('./jwk-get/server.js'),
  'key-rotated': () => import('./key-rotated/server.js'),
  'event-dead-letter': () => import('./event-dead-letter/server.js'),
  'event-relay': () => import('./event-relay/server.js'),
};

/** The function to run; throws ConfigError when FUNCTION_TARGET names none of them. */
function functionTarget(environment: Env): string {
  const env = new EnvReader(environment);
  const targets = Object.keys(FUNCTION_SERVERS);
  const target = env.oneOf('FUNCTION_TARGET', targets, '');
  if (env.raw('FUNCTION_TARGET') === undefined) env.problem('FUNCTION_TARGET', `must be set to one of ${targets.join(', ')}`);
  env.finish();
  return target;
}

const target = exitOnConfigError('host', () => functionTarget(process.env));
// Any failure to start ends the process as an uncaught error would: the stack on stderr, exit 1
// (explicitly: a function's timers may already be running).
FUNCTION_SERVERS[target]!().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
