/**
 * Runs one function's handler on the bare node:http host (shared/http/node-host.ts), as the
 * runtime image does: the host's settings from the environment, then listen. Each function's
 * server.ts calls this once with its handler module's handler and logger; functions-framework
 * (and the express stack under it) is never loaded here: it costs start-up time and memory the
 * lean host does not use.
 */
import type { AddressInfo } from 'node:net';
import { EnvReader, type Env } from '../shared/config/env.js';
import { exitOnConfigError } from '../shared/config/exit-on-config-error.js';
import { hostHandler } from '../shared/http/node-host.js';
import type { RequestHandler } from '../shared/http/serving-handler.js';
import { DeferredLogger } from '../shared/observability/deferred-logger.js';
import type { Logger } from '../shared/observability/logger.js';

export interface HostSettings {
  readonly port: number;
  readonly host: string | undefined;
  readonly shutdownGraceMs: number;
}

/** PORT, HOST and SHUTDOWN_GRACE_MS; throws ConfigError naming every bad one. */
export function readHostSettings(environment: Env): HostSettings {
  const env = new EnvReader(environment);
  const port = env.integer('PORT', 8080, { min: 0, max: 65_535 });
  const host = env.raw('HOST');
  const shutdownGraceMs = env.integer('SHUTDOWN_GRACE_MS', 10_000, { min: 0, max: 120_000 });
  env.finish();
  return { port, host, shutdownGraceMs };
}

/**
 * Listens with `handler` on the configured port, logging through the function's own logger (one
 * per process, so its lines stay in order). A refused setting exits 78 (exitOnConfigError); a
 * port that cannot be bound is logged and exits 1, as nothing would ever be served.
 */
export function serveOnLeanHost(target: string, handler: RequestHandler, logger: Logger, hooks: { beforeExit?: () => Promise<void> } = {}): void {
  const settings = exitOnConfigError('host', () => readHostSettings(process.env));
  // A logger that holds its records until loaded must write them before the process exits.
  const logsWritten = (): Promise<void> => (logger instanceof DeferredLogger ? logger.load() : Promise.resolve());
  hostHandler(handler, { ...settings, logger, logsWritten, ...hooks }).then(
    (server) => {
      const { address, port } = server.address() as AddressInfo;
      logger.info({ event: 'listening', address, port }, `${target} listening on ${address}:${port}`);
    },
    (error: unknown) => {
      logger.fatal({ event: 'listen_failed', err: error }, `${target} cannot listen on port ${settings.port}`);
      void logsWritten().finally(() => process.exit(1));
    },
  );
}
