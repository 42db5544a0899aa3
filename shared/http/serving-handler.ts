import type { IncomingMessage, ServerResponse } from 'node:http';
import { isValidKid, MAX_KID_LENGTH } from '../jwks/kid.js';
import type { Logger } from '../observability/logger.js';
import type { Route, ServingMetrics } from '../observability/serving-metrics.js';
import type { DiscoveryConfig } from '../config/discovery-config.js';
import { DiscoveryDocuments } from '../serving/discovery-document.js';
import type { CacheStatus, KeySetSnapshot } from '../serving/key-set-cache.js';
import { PemRepresentations } from '../serving/pem-representations.js';
import type { Representation } from '../serving/representation.js';
import { isNotModified } from './conditional.js';
import { wantsPlainJson } from './media-type.js';
import { answerHealth, answerMetrics, answerReadiness } from './probes.js';
import { pathOf } from './request-target.js';
import { COMMON_HEADERS, PreparedResponses, cacheControlFor, sendError, type CachePolicy } from './responses.js';

/**
 * jwks-get serves the whole set at /jwks (and the discovery document when configured); jwk-get
 * serves one key at /jwk/{kid}, as PEM at /jwk/{kid}.pem and its leaf certificate at /jwk/{kid}.crt.
 */
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
  /** jwks-get: serve /.well-known/openid-configuration (JWKS_ISSUER, JWKS_PUBLIC_URL); 404 when undefined. */
  readonly discovery?: DiscoveryConfig;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

const RESOURCE_METHODS = 'GET, HEAD, OPTIONS';
const PROBE_METHODS = 'GET, HEAD';
const KEY_PATH_PREFIX = '/jwk/';
const SET_TYPE = 'application/jwk-set+json';
const KEY_TYPE = 'application/jwk+json';
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const DISCOVERY_TYPE = 'application/json';
/** RFC 7468 PEM; the media type most tools know for a PEM public key. */
const PEM_TYPE = 'application/x-pem-file';
/** RFC 8555 section 9.1: PEM certificates, end-entity first (here the leaf alone). */
const CERTIFICATE_TYPE = 'application/pem-certificate-chain';
const PEM_SUFFIX = '.pem';
const CERTIFICATE_SUFFIX = '.crt';

/**
 * The HTTP face of a serving function, for functions-framework or a bare node:http server alike.
 * Everything it answers comes from memory: the key set is loaded by KeySetCache, off the request
 * path, and requests never touch the store.
 */
export function createServingHandler(options: ServingHandlerOptions): RequestHandler {
  const { resource, cache, metrics, policy, logger } = options;
  const now = options.now ?? (() => new Date());
  const prepared = new PreparedResponses(cacheControlFor(policy));
  const discovery = options.discovery === undefined ? undefined : new DiscoveryDocuments(options.discovery, now());
  const pemForms = new PemRepresentations();
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

  /** `type` is JSON (negotiable down to application/json) unless `fixedType` says otherwise. */
  function serve(req: IncomingMessage, res: ServerResponse, head: boolean, representation: Representation, type: string, fixedType = false): void {
    const mediaType = fixedType || !wantsPlainJson(req.headers.accept, type) ? type : 'application/json';
    const headers = prepared.get(representation, mediaType);
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

  function serveDiscovery(req: IncomingMessage, res: ServerResponse, method: string, documents: DiscoveryDocuments): void {
    if (answeredByMethod(method, res)) return;
    const head = method === 'HEAD';
    const snapshot = cache.current();
    if (snapshot === undefined) return notReady(res, head);
    serve(req, res, head, documents.for(snapshot.set), DISCOVERY_TYPE);
  }

  /** The key's representation, or undefined once the request has been answered (an error). */
  function keyOf(res: ServerResponse, method: string, kid: string): Representation | undefined {
    if (answeredByMethod(method, res)) return undefined;
    const head = method === 'HEAD';
    if (!isValidKid(kid)) {
      sendError(res, head, 400, 'invalid_kid', `a kid is 1 to ${MAX_KID_LENGTH} characters from A-Z, a-z, 0-9, "-" and "_"`);
      return undefined;
    }
    const snapshot = cache.current();
    if (snapshot === undefined) {
      notReady(res, head);
      return undefined;
    }
    const key = snapshot.keys.get(kid);
    if (key === undefined) sendError(res, head, 404, 'unknown_kid', 'no published key has this kid', notFoundCaching);
    return key;
  }

  function serveKey(req: IncomingMessage, res: ServerResponse, method: string, kid: string): void {
    const key = keyOf(res, method, kid);
    if (key !== undefined) serve(req, res, method === 'HEAD', key, KEY_TYPE);
  }

  function servePem(req: IncomingMessage, res: ServerResponse, method: string, kid: string, form: 'pem' | 'crt'): void {
    const key = keyOf(res, method, kid);
    if (key === undefined) return;
    const head = method === 'HEAD';
    const forms = pemForms.of(key);
    if (form === 'pem') return serve(req, res, head, forms.publicKey, PEM_TYPE, true);
    if (forms.certificate === undefined) {
      return sendError(res, head, 404, 'no_certificate', 'this key is published without a certificate (no x5c)', notFoundCaching);
    }
    serve(req, res, head, forms.certificate, CERTIFICATE_TYPE, true);
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
        // A kid never holds '.', so a suffix is never part of one.
        if (path.endsWith(PEM_SUFFIX)) {
          route = 'jwk_pem';
          servePem(req, res, method, path.slice(KEY_PATH_PREFIX.length, -PEM_SUFFIX.length), 'pem');
        } else if (path.endsWith(CERTIFICATE_SUFFIX)) {
          route = 'jwk_crt';
          servePem(req, res, method, path.slice(KEY_PATH_PREFIX.length, -CERTIFICATE_SUFFIX.length), 'crt');
        } else {
          route = 'jwk';
          serveKey(req, res, method, path.slice(KEY_PATH_PREFIX.length));
        }
      } else if (resource === 'set' && path === DISCOVERY_PATH && discovery !== undefined) {
        route = 'discovery';
        serveDiscovery(req, res, method, discovery);
      } else {
        sendError(res, method === 'HEAD', 404, 'not_found', 'no such resource');
      }
      metrics.observeRequest(route, res.statusCode, (performance.now() - started) / 1000);
    } catch (error) {
      failed(res, route, error, started);
    }
  };
}
