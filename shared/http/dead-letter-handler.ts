import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Registry, collectProcessMetricsSoon } from '../observability/prometheus.js';
import { PING_EVENT_TYPE, ROTATION_EVENT_TYPES, parseCloudEvents } from '../events/rotation-events.js';
import type { Logger } from '../observability/logger.js';
import { readBody } from './read-body.js';
import { sendError, sendJson } from './responses.js';
import type { RequestHandler } from './serving-handler.js';
import { eventEndpoint } from './event-endpoint.js';

const MAX_EVENT_BYTES = 256 * 1024;
/** Knative adds these to a dead-lettered event: why the last delivery failed, and where to. */
const ERROR_HEADERS = { errorCode: 'ce-knativeerrorcode', errorDestination: 'ce-knativeerrordest' } as const;

/**
 * The dead-letter sink of the Triggers: an event Knative gave up delivering to key-rotated lands
 * here and is written as one audit record, so a rotation that never got published is seen in the
 * SIEM and alerted on (jwks_events_dead_lettered_total). It only logs; the hourly ping republishes.
 */
export function createDeadLetterHandler(logger: Logger): RequestHandler {
  const registry = new Registry();
  collectProcessMetricsSoon(registry);
  const deadLettered = new Counter({
    name: 'jwks_events_dead_lettered_total',
    help: 'CloudEvents Knative could not deliver to key-rotated, by event type.',
    labelNames: ['type'],
    registers: [registry],
  });
  // At 0 from the start, so the alert sees the first dead letter of each type.
  for (const type of [PING_EVENT_TYPE, ...ROTATION_EVENT_TYPES, 'other']) deadLettered.labels(type).inc(0);

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, MAX_EVENT_BYTES);
    if (!body.ok) {
      if (body.reason === 'too_large') sendError(res, false, 413, 'too_large', `an event is at most ${MAX_EVENT_BYTES} bytes`);
      return;
    }
    const parsed = parseCloudEvents(req.headers, body.body);
    if (!parsed.ok) return sendError(res, false, 400, 'invalid_cloudevent', parsed.problem);
    for (const event of parsed.events) {
      deadLettered.inc({ type: event.kind === 'unknown' ? 'other' : event.type });
      logger.error(
        {
          audit: true,
          event: 'event_dead_lettered',
          eventId: event.id,
          eventType: event.type,
          eventSource: event.source,
          errorCode: headerOf(req, ERROR_HEADERS.errorCode),
          errorDestination: headerOf(req, ERROR_HEADERS.errorDestination),
        },
        'Knative gave up delivering an event to key-rotated; the hourly ping will republish',
      );
    }
    sendJson(res, false, 202, { status: 'recorded' });
  }

  return eventEndpoint({ registry, logger, receive });
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value.slice(0, 200) : undefined;
}
