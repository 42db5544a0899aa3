import { CloudEvent, HTTP, ValidationError } from 'cloudevents';

/** Knative PingSource ticks: the hourly safety net, and the frequent change check. */
export const PING_EVENT_TYPE = 'dev.knative.sources.ping';
/**
 * Every PingSource sends the same type: the change check's ticks carry this CloudEvents extension
 * (PingSource `ceOverrides`), or come from the PingSource of this name (`source` ends with it).
 */
export const CHANGE_CHECK_EXTENSION = 'jwkscheck';
export const CHANGE_CHECK_EXTENSION_VALUE = 'changes';
export const CHANGE_CHECK_PINGSOURCE = 'jwks-change-check';
/** Posted by whatever performs or observes a rotation in CipherTrust Manager (CM has no webhook). */
export const ROTATION_EVENT_TYPES: readonly string[] = [
  'com.thalesgroup.ciphertrust.key.rotated',
  'com.thalesgroup.ciphertrust.key.created',
  'com.thalesgroup.ciphertrust.key.state-changed',
  'com.thalesgroup.ciphertrust.key.destroyed',
];

export type EventKind = 'ping' | 'change-check' | 'rotation' | 'unknown';

/** The attributes we keep; the data is never used (keys always come from CM). */
export interface ReceivedEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly kind: EventKind;
}

export type ParsedEvents = { readonly ok: true; readonly events: readonly ReceivedEvent[] } | { readonly ok: false; readonly problem: string };

const MAX_BATCH = 100;

const REQUIRED_ATTRIBUTES = ['specversion', 'id', 'source', 'type'] as const;

/**
 * Reads the CloudEvent(s) of one HTTP request, binary or structured mode (or a batch), with the
 * cloudevents SDK, validated against the 1.0 spec. The SDK fills in a missing id and accepts other
 * spec versions, so required attributes are checked on the wire first. Anything else is
 * `ok: false` with a short reason that can be shown to the sender.
 */
export function parseCloudEvents(headers: Readonly<Record<string, string | string[] | undefined>>, body: Buffer): ParsedEvents {
  const flatHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flatHeaders[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const text = body.length === 0 ? undefined : body.toString('utf8');
  const missing = missingAttribute(flatHeaders, text);
  // Shortened: the reason may quote an attribute as sent (a specversion of any length).
  if (missing !== undefined) return { ok: false, problem: shorten(missing) };
  let events;
  try {
    const parsed = HTTP.toEvent({ headers: flatHeaders, body: text });
    events = Array.isArray(parsed) ? parsed : [parsed];
    for (const event of events) {
      if (!(event instanceof CloudEvent)) return { ok: false, problem: 'not a CloudEvent' };
      event.validate();
    }
  } catch (error) {
    return { ok: false, problem: describe(error) };
  }
  if (events.length === 0) return { ok: false, problem: 'empty CloudEvents batch' };
  if (events.length > MAX_BATCH) return { ok: false, problem: `a batch holds at most ${MAX_BATCH} events` };
  return {
    ok: true,
    events: events.map((event) => ({ id: event.id, type: event.type, source: event.source, kind: kindOf(event) })),
  };
}

/** The first required attribute absent from the request as sent, or a reason it cannot be read. */
function missingAttribute(headers: Readonly<Record<string, string>>, text: string | undefined): string | undefined {
  const contentType = (headers['content-type'] ?? '').toLowerCase();
  if (!contentType.startsWith('application/cloudevents')) {
    if (headers['ce-specversion'] === undefined && headers['ce-id'] === undefined) return 'not a CloudEvent (no ce-* headers and not application/cloudevents+json)';
    for (const attribute of REQUIRED_ATTRIBUTES) {
      if ((headers[`ce-${attribute}`] ?? '') === '') return `missing ce-${attribute} header`;
    }
    return checkVersion(headers['ce-specversion']);
  }
  let document: unknown;
  try {
    document = JSON.parse(text ?? '');
  } catch {
    return 'the body is not valid JSON';
  }
  const items: unknown[] = Array.isArray(document) ? document : [document];
  for (const item of items) {
    if (typeof item !== 'object' || item === null) return 'a structured CloudEvent must be a JSON object';
    const record = item as Record<string, unknown>;
    for (const attribute of REQUIRED_ATTRIBUTES) {
      if (typeof record[attribute] !== 'string' || record[attribute] === '') return `missing ${attribute} attribute`;
    }
    const version = checkVersion(record.specversion as string);
    if (version !== undefined) return version;
  }
  return undefined;
}

function checkVersion(version: string | undefined): string | undefined {
  return version === '1.0' ? undefined : `unsupported specversion ${JSON.stringify(version)} (1.0 expected)`;
}

/** A ping is the change check's when it says so (extension) or comes from its PingSource. */
function kindOf(event: { readonly type: string; readonly source: string }): EventKind {
  const kind = classify(event.type);
  if (kind !== 'ping') return kind;
  const marked = (event as unknown as Record<string, unknown>)[CHANGE_CHECK_EXTENSION] === CHANGE_CHECK_EXTENSION_VALUE;
  return marked || event.source.endsWith(`/pingsources/${CHANGE_CHECK_PINGSOURCE}`) ? 'change-check' : 'ping';
}

export function classify(type: string): EventKind {
  if (type === PING_EVENT_TYPE) return 'ping';
  return ROTATION_EVENT_TYPES.includes(type) ? 'rotation' : 'unknown';
}

/** The SDK's messages name the attribute at fault; they never echo the body. */
function describe(error: unknown): string {
  if (error instanceof ValidationError) {
    const details = (error.errors ?? []).map((detail) => (typeof detail === 'string' ? detail : JSON.stringify(detail))).join('; ');
    return shorten(`invalid CloudEvent: ${error.message}${details !== '' ? ` (${details})` : ''}`);
  }
  if (error instanceof SyntaxError) return 'the body is not valid JSON';
  return shorten(error instanceof Error ? error.message : 'not a CloudEvent');
}

function shorten(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
