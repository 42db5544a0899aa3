import type { IncomingMessage, ServerResponse } from 'node:http';
import { CloudEvent, HTTP } from 'cloudevents';
import fetch from 'node-fetch';
import { Counter, Registry, collectProcessMetricsSoon } from '../observability/prometheus.js';
import { parseCloudEvents, type ReceivedEvent } from '../events/rotation-events.js';
import type { Logger } from '../observability/logger.js';
import { readBody } from './read-body.js';
import { sendError, sendJson } from './responses.js';
import type { RequestHandler } from './serving-handler.js';
import { eventEndpoint } from './event-endpoint.js';
import { answerMissingSecret, sharedSecretCheck } from './shared-secret.js';

export interface RelayOptions {
  /** Where events go: the Broker ingress, injected as K_SINK by a SinkBinding. */
  readonly sink: string;
  readonly sharedSecret: string;
  readonly logger: Logger;
  readonly maxEventBytes: number;
  readonly forwardTimeoutMs: number;
}

/**
 * event-relay: the door for rotation announcements from outside the cluster (a relay of CM's
 * audit records, a pipeline on another platform). It takes a CloudEvent only with the shared
 * secret and only of a rotation type, and forwards its attributes, not its data, to the Broker:
 * the event is a hint and key-rotated always re-reads CipherTrust Manager.
 */
export function createRelayHandler(options: RelayOptions): RequestHandler {
  const { logger } = options;
  const presentsSecret = sharedSecretCheck(options.sharedSecret);
  const registry = new Registry();
  collectProcessMetricsSoon(registry);
  const relayed = new Counter({
    name: 'jwks_relay_events_total',
    help: 'Events received by event-relay, by result: forwarded, refused (secret, type, shape), failed (the Broker did not take it).',
    labelNames: ['result'],
    registers: [registry],
  });

  async function forward(event: ReceivedEvent): Promise<number> {
    const message = HTTP.binary(new CloudEvent({ id: event.id, source: event.source, type: event.type }));
    // A timer cleared once the Broker has answered, not AbortSignal.timeout(): that one holds its
    // signal until the full timeout has passed, so a burst of events kept every request's
    // signal and timer alive for forwardTimeoutMs (issue 6: event-relay's memory under load).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer from the Broker within ${options.forwardTimeoutMs} ms`)), options.forwardTimeoutMs);
    try {
      const response = await fetch(options.sink, {
        method: 'POST',
        headers: message.headers as Record<string, string>,
        redirect: 'error',
        signal: abort.signal,
      });
      await response.arrayBuffer();
      return response.status;
    } finally {
      clearTimeout(timer);
    }
  }

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!presentsSecret(req)) {
      relayed.inc({ result: 'refused' });
      logger.warn({ event: 'relay_unauthorized', remoteAddress: req.socket.remoteAddress }, 'event without the shared secret refused');
      return answerMissingSecret(res);
    }
    const body = await readBody(req, options.maxEventBytes);
    if (!body.ok) {
      if (body.reason === 'too_large') sendError(res, false, 413, 'too_large', `an event is at most ${options.maxEventBytes} bytes`);
      return;
    }
    const parsed = parseCloudEvents(req.headers, body.body);
    const refuse = (problem: string): void => {
      relayed.inc({ result: 'refused' });
      sendError(res, false, 400, 'invalid_cloudevent', problem);
    };
    if (!parsed.ok) return refuse(parsed.problem);
    if (parsed.events.some((event) => event.kind !== 'rotation')) return refuse('only com.thalesgroup.ciphertrust.key.* rotation events are relayed');
    for (const event of parsed.events) {
      let status: number;
      try {
        status = await forward(event);
      } catch (error) {
        status = 0;
        logger.error({ event: 'relay_failed', eventId: event.id, reason: error instanceof Error ? error.name : 'error' }, 'the Broker could not be reached');
      }
      if (status < 200 || status > 299) {
        relayed.inc({ result: 'failed' });
        return sendError(res, false, 502, 'relay_failed', `the Broker did not accept event ${event.id} (${status === 0 ? 'unreachable' : `status ${status}`})`);
      }
      relayed.inc({ result: 'forwarded' });
      logger.info({ audit: true, event: 'event_relayed', eventId: event.id, eventType: event.type, eventSource: event.source }, 'rotation event relayed to the Broker');
    }
    sendJson(res, false, 202, { status: 'relayed', events: parsed.events.length });
  }

  return eventEndpoint({ registry, logger, receive });
}
