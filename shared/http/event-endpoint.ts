import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { answerHealth, answerMetrics } from './probes.js';
import { pathOf } from './request-target.js';
import { sendError } from './responses.js';
import type { RequestHandler } from './serving-handler.js';

/**
 * The HTTP shape of a small CloudEvent receiver (the dead-letter sink, the relay): POST / goes to
 * `receive`; /healthz and /readyz answer alive; /metrics exposes `registry`; anything else is a
 * JSON 404 or 405. A failure inside `receive` is logged and answered 500.
 */
export function eventEndpoint(options: {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly receive: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}): RequestHandler {
  const { registry, logger, receive } = options;
  return function handleEventEndpoint(req, res) {
    const path = pathOf(req.url);
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    const fail = (error: unknown): void => {
      logger.error({ event: 'request_failed', err: error }, 'request failed');
      if (!res.headersSent) sendError(res, false, 500, 'internal_error', 'the request could not be answered');
    };
    if (path === '/healthz' || path === '/readyz') return answerHealth(res, head);
    if (path === '/metrics') {
      answerMetrics(res, head, registry).catch(fail);
      return;
    }
    if (path !== '/') return sendError(res, head, 404, 'not_found', 'no such resource');
    if (method !== 'POST') return sendError(res, head, 405, 'method_not_allowed', 'post CloudEvents here', { 'Cache-Control': 'no-store', Allow: 'POST' });
    receive(req, res).catch(fail);
  };
}
