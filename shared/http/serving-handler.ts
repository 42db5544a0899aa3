import type { IncomingMessage, ServerResponse } from 'node:http';
import { isValidKid, MAX_KID_LENGTH } from '../jwks/kid.js';
import type { Logger } from '../observability/logger.js';
import type { Route, ServingMetrics } from '../observability/serving-metrics.js';
import type { CacheStatus, KeySetSnapshot } from '../serving/key-set-cache.js';
import type { Representation } from '../serving/representation.js';
import { isNotModified } from './conditional.js';
import { wantsPlainJson } from './media-type.js';
import { answerHealth, answerMetrics, answerReadiness } from './probes.js';
import { pathOf } from './request-target.js';
import { COMMON_HEADERS, PreparedResponses, cacheControlFor, sendError, type CachePolicy } from './responses.js';

/** jwks-get serves the whole set at /jwks; jwk-get serves one key at /jwk/{kid}. */
export type ServedResource = 'set' | 'key';

export interface ServingHandlerOptions {
  readonly resource: ServedResource;
  readonly cache: { current(): KeySetSnapshot | undefined; status(): CacheStatus };
  readonly metrics: ServingMetrics;
  readonly policy: CachePolicy;
  readonly retryAfterSeconds: number;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Called after each answer that carried the key set or a key (200 or 304). */
  readonly afterServed?: () => void;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

const RESOURCE_METHODS = 'GET, HEAD, OPTIONS';
const PROBE_METHODS = 'GET, HEAD';
const KEY_PATH_PREFIX = '/jwk/';
const SET_TYPE = 'application/jwk-set+json';
const KEY_TYPE = 'application/jwk+json';

/**
 * The HTTP face of a serving function, for functions-framework or a bare node:http server alike.
 * Everything it answers comes from memory: the key set is loaded by KeySetCache, off the request
 * path, and requests never touch the store.
 */
export function createServingHandler(options: ServingHandlerOptions): RequestHandler {
  const { resource, cache, metrics, policy, logger } = options;
  const now = options.now ?? (() => new Date());
  const prepared = new PreparedResponses(cacheControlFor(policy));
  const notFoundCaching = { 'Cache-Control': `public, max-age=${policy.notFoundMaxAgeSeconds}` };
  const notReadyHeaders = { 'Cache-Control': 'no-store', 'Retry-After': String(options.retryAfterSeconds) };
  const preflightHeaders = {
    ...COMMON_HEADERS,
    Allow: RESOURCE_METHODS,
    'Access-Control-Allow-Methods': RESOURCE_METHODS,
    'Access-Control-Allow-Headers': 'Accept, If-None-Match, If-Modified-Since',
    'Access-Control-Max-Age': '86400',
    'Cache-Control': 'public, max-age=86400',
    'Content-Length': '0',
  };

  function serve(req: IncomingMessage, res: ServerResponse, head: boolean, representation: Representation, type: string): void {
    const headers = prepared.get(representation, wantsPlainJson(req.headers.accept, type) ? 'application/json' : type);
    if (isNotModified(req.headers, representation.etag, representation.lastModified)) {
      res.writeHead(304, headers.notModified);
      res.end();
    } else {
      res.writeHead(200, headers.ok);
      if (head) res.end();
      else res.end(headers.body, 'latin1');
    }
    options.afterServed?.();
  }

  /** Method rules shared by /jwks and /jwk/{kid}; returns true when the request was answered. */
  function answeredByMethod(method: string, res: ServerResponse): boolean {
    if (method === 'GET' || method === 'HEAD') return false;
    if (method === 'OPTIONS') {
      res.writeHead(204, preflightHeaders);
      res.end();
    } else {
      sendError(res, false, 405, 'method_not_allowed', `use ${RESOURCE_METHODS}`, { 'Cache-Control': 'no-store', Allow: RESOURCE_METHODS });
    }
    return true;
  }

  function serveSet(req: IncomingMessage, res: ServerResponse, method: string): void {
    if (answeredByMethod(method, res)) return;
    const head = method === 'HEAD';
    const snapshot = cache.current();
    if (snapshot === undefined) return notReady(res, head);
    serve(req, res, head, snapshot.set, SET_TYPE);
  }

  function serveKey(req: IncomingMessage, res: ServerResponse, method: string, kid: string): void {
    if (answeredByMethod(method, res)) return;
    const head = method === 'HEAD';
    if (!isValidKid(kid)) {
      return sendError(res, head, 400, 'invalid_kid', `a kid is 1 to ${MAX_KID_LENGTH} characters from A-Z, a-z, 0-9, "-" and "_"`);
    }
    const snapshot = cache.current();
    if (snapshot === undefined) return notReady(res, head);
    const key = snapshot.keys.get(kid);
    if (key === undefined) return sendError(res, head, 404, 'unknown_kid', 'no published key has this kid', notFoundCaching);
    serve(req, res, head, key, KEY_TYPE);
  }

  function notReady(res: ServerResponse, head: boolean): void {
    sendError(res, head, 503, 'not_ready', 'no valid key set has been loaded yet', notReadyHeaders);
  }

  function probe(route: Route, res: ServerResponse, method: string, started: number): void {
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(res, false, 405, 'method_not_allowed', `use ${PROBE_METHODS}`, { 'Cache-Control': 'no-store', Allow: PROBE_METHODS });
    } else if (route === 'healthz') {
      answerHealth(res, method === 'HEAD');
    } else if (route === 'readyz') {
      answerReadiness(res, method === 'HEAD', cache.status(), now());
    } else {
      answerMetrics(res, method === 'HEAD', metrics.registry).then(
        () => metrics.observeRequest(route, res.statusCode, (performance.now() - started) / 1000),
        (error: unknown) => failed(res, route, error, started),
      );
      return;
    }
    metrics.observeRequest(route, res.statusCode, (performance.now() - started) / 1000);
  }

  function failed(res: ServerResponse, route: Route, error: unknown, started: number): void {
    logger.error({ event: 'request_failed', route, err: error }, 'request failed');
    if (!res.headersSent) sendError(res, false, 500, 'internal_error', 'the request could not be answered');
    else res.destroy();
    metrics.observeRequest(route, 500, (performance.now() - started) / 1000);
  }

  return function handleServingRequest(req, res) {
    const started = performance.now();
    const path = pathOf(req.url);
    const method = req.method ?? 'GET';
    let route: Route = 'other';
    try {
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
        probe(path.slice(1) as Route, res, method, started);
        return;
      }
      if (resource === 'set' && path === '/jwks') {
        route = 'jwks';
        serveSet(req, res, method);
      } else if (resource === 'key' && path.startsWith(KEY_PATH_PREFIX)) {
        route = 'jwk';
        serveKey(req, res, method, path.slice(KEY_PATH_PREFIX.length));
      } else {
        sendError(res, method === 'HEAD', 404, 'not_found', 'no such resource');
      }
      metrics.observeRequest(route, res.statusCode, (performance.now() - started) / 1000);
    } catch (error) {
      failed(res, route, error, started);
    }
  };
}
