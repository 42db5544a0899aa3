import { createServer, type Server } from 'node:http';
import type { Logger } from '../observability/logger.js';
import type { RequestHandler } from './serving-handler.js';

export interface HostOptions {
  /** Interface to bind; undefined binds all (what a container needs). */
  readonly host: string | undefined;
  readonly port: number;
  readonly logger: Logger;
  /** How long in-flight requests get to finish after SIGTERM. */
  readonly shutdownGraceMs: number;
}

/**
 * A bare node:http host for a functions-framework handler: the same handler, without Express's
 * body parsers and router in front of it (which decode the path and answer malformed
 * percent-encoding with an HTML page). Drains on SIGTERM instead of failing the open request.
 */
export async function hostHandler(handler: RequestHandler, options: HostOptions): Promise<Server> {
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, handler);
  // Longer than the idle timeouts of the proxies in front (queue-proxy, F5), so they close first.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const shutdown = (signal: string): void => {
    options.logger.info({ event: 'shutdown', signal }, 'draining connections before exit');
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), options.shutdownGraceMs).unref();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  return server;
}
