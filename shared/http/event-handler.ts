import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCloudEvents, type ReceivedEvent } from '../events/rotation-events.js';
import type { Logger } from '../observability/logger.js';
import type { PublisherMetrics } from '../observability/publisher-metrics.js';
import type { ChangeCheckResult } from '../publisher/change-check.js';
import type { CycleResult, CycleTrigger } from '../publisher/publication-cycle.js';
import { answerHealth, answerMetrics } from './probes.js';
import { readBody } from './read-body.js';
import { pathOf } from './request-target.js';
import { sendError, sendJson } from './responses.js';
import { answerMissingSecret, sharedSecretCheck } from './shared-secret.js';
import type { RequestHandler } from './serving-handler.js';

/** What /readyz reports about the publisher. */
export interface PublisherStatus {
  readonly lastSuccess: Date | undefined;
  readonly lastResult: CycleResult | undefined;
  readonly lastResultAt: Date | undefined;
  /** A publication cycle is running now. */
  readonly publishing: boolean;
}

export interface EventHandlerOptions {
  /** Runs (or joins) one publication cycle covering these triggers; resolves with its result. */
  readonly requestPublication: (triggers: CycleTrigger[]) => Promise<CycleResult>;
  /** Runs one change check (a tick of the frequent PingSource); it publishes only when something changed. */
  readonly requestChangeCheck: (eventId: string) => Promise<ChangeCheckResult>;
  readonly status: () => PublisherStatus;
  readonly metrics: PublisherMetrics;
  readonly logger: Logger;
  readonly sharedSecret: string | undefined;
  readonly maxEventBytes: number;
}

const EVENT_PATH = '/';

/**
 * The HTTP face of key-rotated. POST / takes CloudEvents (binary or structured): a ping or a
 * rotation event runs a publication and the answer says how it went (non-2xx when it failed, so
 * Knative delivery retries); other types are acknowledged and ignored. GET /healthz, /readyz and
 * /metrics are the probes. The event body is never used: keys always come from CM.
 */
export function createEventHandler(options: EventHandlerOptions): RequestHandler {
  const { metrics, logger } = options;
  const presentsSecret = options.sharedSecret === undefined ? undefined : sharedSecretCheck(options.sharedSecret);

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (presentsSecret !== undefined && !presentsSecret(req)) {
      metrics.eventReceived('unauthorized');
      logger.warn({ event: 'event_unauthorized', remoteAddress: req.socket.remoteAddress }, 'event without the shared secret refused');
      return answerMissingSecret(res);
    }
    const body = await readBody(req, options.maxEventBytes);
    if (!body.ok) {
      if (body.reason === 'aborted') return;
      metrics.eventReceived('too_large');
      res.setHeader('Connection', 'close');
      return sendError(res, false, 413, 'too_large', `an event is at most ${options.maxEventBytes} bytes`);
    }
    const parsed = parseCloudEvents(req.headers, body.body);
    if (!parsed.ok) {
      metrics.eventReceived('invalid');
      logger.warn({ event: 'event_invalid', problem: parsed.problem }, 'request is not a valid CloudEvent');
      return sendError(res, false, 400, 'invalid_cloudevent', parsed.problem);
    }
    const relevant = parsed.events.filter((event) => event.kind !== 'unknown');
    for (const event of parsed.events) {
      metrics.eventReceived(event.kind === 'unknown' ? 'ignored' : event.kind === 'change-check' ? 'change_check' : event.kind);
      const record = { event: event.kind === 'unknown' ? 'event_ignored' : 'event_received', eventId: event.id, eventType: event.type, eventSource: event.source };
      // A change-check tick arrives every minute: its own line says when it found something.
      if (event.kind === 'change-check') logger.debug(record, 'change check tick received');
      else logger.info(record, event.kind === 'unknown' ? `event type ${event.type} is not one key-rotated acts on; acknowledged` : `${event.kind} event received`);
    }
    if (relevant.length === 0) return sendJson(res, false, 202, { status: 'ignored', message: 'no event type this function acts on' });
    const publications = relevant.filter((event) => event.kind !== 'change-check');
    // One cycle covers every event of a batch: they all ask for the same thing, a fresh read of CM
    // (which also covers any change-check tick among them).
    if (publications.length > 0) return answerWithResult(res, await options.requestPublication(publications.map(triggerOf)));
    answerCheck(res, await options.requestChangeCheck(relevant[0]!.id));
  }

  /**
   * Always 200: a failed check is retried by the next tick a minute later, and a change it found
   * but could not publish stays unhandled until then; a delivery retry would only add load.
   */
  function answerCheck(res: ServerResponse, result: ChangeCheckResult): void {
    const publication = result.publication;
    sendJson(res, false, 200, {
      check: result.outcome,
      ...(result.reason !== undefined && { reason: result.reason }),
      ...(publication !== undefined && { outcome: publication.outcome, added: publication.added.length, removed: publication.removed.length, keys: publication.keys }),
      ...(result.outcome === 'failed' && { message: result.message }),
    });
  }

  function answerWithResult(res: ServerResponse, result: CycleResult): void {
    const summary = { outcome: result.outcome, added: result.added.length, removed: result.removed.length, keys: result.keys };
    switch (result.outcome) {
      case 'published':
      case 'unchanged':
      case 'dry_run':
        // A withdrawal published over a cap: the additions held back are named (guard, message).
        return sendJson(res, false, 200, result.guard === undefined ? summary : { ...summary, guard: result.guard.guard, message: result.message });
      case 'refused':
        return sendJson(res, false, 409, { ...summary, error: 'publication_refused', guard: result.guard?.guard, message: result.message });
      case 'failed': {
        const status = result.failure === 'ciphertrust' ? 502 : result.failure === 'store' ? 503 : 500;
        const error = result.failure === 'ciphertrust' ? 'ciphertrust_failed' : result.failure === 'store' ? 'store_failed' : 'publication_failed';
        return sendJson(res, false, status, { ...summary, error, message: result.message });
      }
    }
  }

  function readiness(res: ServerResponse, head: boolean): void {
    const { lastSuccess, lastResult, lastResultAt, publishing } = options.status();
    const kept = lastResult?.keptUnreadable ?? [];
    const degraded = lastResult !== undefined && (lastResult.outcome === 'failed' || lastResult.outcome === 'refused' || kept.length > 0);
    // Always 200: an unready key-rotated would stop receiving the very events that can fix it.
    sendJson(res, head, 200, {
      status: degraded ? 'degraded' : 'ok',
      lastSuccess: lastSuccess?.toISOString() ?? null,
      lastOutcome: lastResult?.outcome ?? null,
      lastOutcomeAt: lastResultAt?.toISOString() ?? null,
      publishing,
      problem: degraded
        ? {
            failure: lastResult.failure ?? null,
            guard: lastResult.guard?.guard ?? null,
            message: lastResult.message ?? (kept.length > 0 ? `${kept.length} published key(s) answered unreadable by CipherTrust Manager, kept as published` : null),
          }
        : null,
    });
  }

  function fail(res: ServerResponse, error: unknown): void {
    logger.error({ event: 'request_failed', err: error }, 'request failed');
    if (!res.headersSent) sendError(res, false, 500, 'internal_error', 'the request could not be answered');
    else res.destroy();
  }

  return function handleKeyRotatedRequest(req, res) {
    const path = pathOf(req.url);
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    try {
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
        if (method !== 'GET' && !head) {
          return sendError(res, false, 405, 'method_not_allowed', 'use GET, HEAD', { 'Cache-Control': 'no-store', Allow: 'GET, HEAD' });
        }
        if (path === '/healthz') return answerHealth(res, head);
        if (path === '/readyz') return readiness(res, head);
        answerMetrics(res, head, metrics.registry).catch((error: unknown) => fail(res, error));
        return;
      }
      if (path !== EVENT_PATH) return sendError(res, head, 404, 'not_found', 'no such resource');
      if (method !== 'POST') return sendError(res, head, 405, 'method_not_allowed', 'post CloudEvents here', { 'Cache-Control': 'no-store', Allow: 'POST' });
      receive(req, res).catch((error: unknown) => fail(res, error));
    } catch (error) {
      fail(res, error);
    }
  };
}

function triggerOf(event: ReceivedEvent): CycleTrigger {
  return { kind: event.kind === 'ping' ? 'ping' : 'rotation', eventId: event.id, eventType: event.type };
}
