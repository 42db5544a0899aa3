/**
 * Key-change notifications as binary-mode CloudEvents. CM itself has no such webhook (reference:
 * audit records go to syslog or a log forwarder); the emulator plays "whatever observes the
 * rotation" so the publisher's event path can be exercised end to end. Delivery is
 * fire-and-forget: a slow or failing sink is logged and never affects the API call.
 */
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import type { Logger } from 'pino';
import type { KeyEventKind } from './objects.js';
import type { CmKeyResource } from './types.js';

export const EVENT_SOURCE = '/ciphertrust-emulator/vault/keys2';
export const EVENT_TYPE_PREFIX = 'com.thalesgroup.ciphertrust.key.';
const DELIVERY_TIMEOUT_MS = 2000;

/** The event body: enough to identify the key; consumers fetch the key itself from the REST API. */
export interface KeyEventData {
  id: string;
  name: string;
  version: number;
  state: string;
}

export class EventNotifier {
  private sink: string | undefined;
  /** Aborts deliveries still in flight when the emulator closes. */
  private readonly closing = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    sink: string | undefined,
    private readonly now: () => Date,
    private readonly logger: Logger,
  ) {
    this.sink = sink;
  }

  setSink(url: string | undefined): void {
    if (url !== undefined) new URL(url); // a bad URL fails here, at the caller, not at delivery
    this.sink = url;
  }

  /** Starts delivery and returns at once. */
  publish(kind: KeyEventKind, key: CmKeyResource): void {
    const sink = this.sink;
    if (sink === undefined || this.closing.signal.aborted) return;
    const data: KeyEventData = { id: key.id, name: key.name, version: key.version, state: key.state };
    const event = new CloudEvent<KeyEventData>({
      id: randomUUID(),
      type: EVENT_TYPE_PREFIX + kind,
      source: EVENT_SOURCE,
      subject: key.id,
      time: this.now().toISOString(),
      datacontenttype: 'application/json',
      data,
    });
    const delivery = this.deliver(sink, event);
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  /** Stops new deliveries and abandons those in flight. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  private async deliver(sink: string, event: CloudEvent<KeyEventData>): Promise<void> {
    const message = HTTP.binary(event);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.headers)) if (typeof value === 'string') headers[name] = value;
    const fields = { sink, type: event.type, subject: event.subject, eventId: event.id };
    try {
      const response = await fetch(sink, {
        method: 'POST',
        headers,
        body: typeof message.body === 'string' ? message.body : JSON.stringify(message.body),
        signal: AbortSignal.any([AbortSignal.timeout(DELIVERY_TIMEOUT_MS), this.closing.signal]),
      });
      // Drain the answer so the connection can be reused; its content is of no interest.
      await response.arrayBuffer();
      if (response.ok) this.logger.debug({ event: 'event_delivered', ...fields, status: response.status }, 'key event delivered');
      else this.logger.warn({ event: 'event_delivery_failed', ...fields, status: response.status }, 'event sink refused a key event');
    } catch (error) {
      this.logger.warn({ event: 'event_delivery_failed', ...fields, reason: error instanceof Error ? error.message : String(error) }, 'key event not delivered');
    }
  }
}
