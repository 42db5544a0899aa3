import { STATUS_CODES, createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import { COMMON_HEADERS, sendError } from './responses.js';
import type { RequestHandler } from './serving-handler.js';

export interface HostOptions {
  /** Interface to bind; undefined binds all (what a container needs). */
  readonly host: string | undefined;
  readonly port: number;
  readonly logger: Logger;
  /** How long in-flight requests get to finish after SIGTERM. */
  readonly shutdownGraceMs: number;
  /** Resolves when every record logged so far is written (a logger that loads late); awaited before exit. */
  readonly logsWritten?: () => Promise<void>;
  /** Runs once the connections are drained, before exit (e.g. revoking a CM refresh token); bounded by shutdownGraceMs. */
  readonly beforeExit?: () => Promise<void>;
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
  answerRefusedRequests(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const exit = (): void => {
    void (options.logsWritten?.() ?? Promise.resolve()).finally(() => process.exit(0));
  };
  let leaving: Promise<void> | undefined;
  const drained = (): void => {
    leaving ??= (options.beforeExit?.() ?? Promise.resolve()).catch(() => undefined).then(exit);
  };
  const shutdown = (signal: string): void => {
    options.logger.info({ event: 'shutdown', signal }, 'draining connections before exit');
    server.close(drained);
    server.closeIdleConnections();
    setTimeout(exit, options.shutdownGraceMs).unref();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  return server;
}

/**
 * Requests Node refuses before the handler runs get the same short JSON error as everything the
 * handler answers, instead of Node's bare status line (or, for CONNECT, no answer at all): a
 * request line or header the parser rejects (an unknown method, a NUL or non-ASCII byte in the
 * path, headers over 16 KiB), an Expect other than 100-continue.
 */
export function answerRefusedRequests(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // As Node's own answer does: never write into a response already under way on this connection.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent: boolean } | null })._httpMessage ?? undefined;
    if (socket.writable && (inFlight === undefined || !inFlight.headersSent)) {
      if (error.code === 'HPE_HEADER_OVERFLOW') socket.write(closingError(431, 'headers_too_large', 'the request headers are over the size limit'));
      else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.write(closingError(408, 'request_timeout', 'the request took too long to arrive'));
      else socket.write(closingError(400, 'bad_request', 'the request could not be parsed'));
    }
    socket.destroy();
  });
  server.on('connect', (_req, socket: Duplex) => {
    socket.end(closingError(405, 'method_not_allowed', 'CONNECT is not supported'));
  });
  server.on('checkExpectation', (req, res) => {
    sendError(res, req.method === 'HEAD', 417, 'expectation_failed', 'only Expect: 100-continue is supported');
  });
}

/** A whole HTTP/1.1 error response for a socket no ServerResponse owns; the connection closes. */
function closingError(status: number, code: string, message: string): string {
  const body = JSON.stringify({ error: code, message });
  const headers = { ...COMMON_HEADERS, 'Cache-Control': 'no-store', 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${String(value)}`);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}
