import { randomUUID } from 'node:crypto';
import type { EmulatorOptions } from '../../emulator/index.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { startTestEmulator, type TestEmulator } from '../emulator/support.js';
import { openBackend, type BackendName, type TestBackend } from './backends.js';
import { eventually, rawRequest } from './http.js';
import { startFunction, type RunningFunction } from './processes.js';

/** Answers that come from a publication cycle (which always writes an audit record). */
const CYCLE_STATUSES = new Set([200, 409, 500, 502, 503]);

/** The CM login the publisher uses in tests: a distinctive password, so a leak is findable. */
export const PUBLISHER_USER = 'jwks-publisher';
export const PUBLISHER_PASSWORD = 'Publisher-Pa55word-never-logged';

export interface PublisherStack {
  readonly emulator: TestEmulator;
  readonly backend: TestBackend;
  readonly keyRotated: RunningFunction;
  /** The environment key-rotated runs with (also what jwks-refresh needs). */
  readonly env: Record<string, string>;
  /** POSTs a PingSource-style tick (binary mode, no body) and returns the answer. */
  ping(): Promise<EventAnswer>;
  /** POSTs a binary-mode event of this type. */
  sendEvent(type: string, headers?: Record<string, string>): Promise<EventAnswer>;
  /** POSTs a tick of the jwks-change-check PingSource (its extension and JSON data), waiting for the audit record of any publication it ran. */
  changeCheck(): Promise<EventAnswer>;
  /** The kids in the stored jwks.json, sorted; [] when there is none. */
  publishedKids(): Promise<string[]>;
  /** The stored jwks.json bytes, or undefined. */
  publishedBytes(): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export interface EventAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The audit records (`"audit":true` lines) in a publisher's output. */
export function auditRecordsIn<T = Record<string, unknown>>(output: string): T[] {
  return output
    .split('\n')
    .filter((line) => line.includes('"audit":true'))
    .map((line) => JSON.parse(line) as T);
}

/** key-rotated publishes once at start: wait for that cycle to end, so tests see only their own. */
export async function waitForFirstCycle(url: string): Promise<void> {
  await eventually(async () => {
    const response = await rawRequest(url, '/readyz');
    return (JSON.parse(response.body.toString()) as { lastOutcome: string | null }).lastOutcome !== null;
  }, 15_000);
}

/** The environment that points a publisher process at an emulator and a backend. */
export function publisherEnv(emulator: Pick<TestEmulator, 'url' | 'caFile'>, backend: TestBackend, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...backend.env,
    CIPHERTRUST_URL: emulator.url,
    CIPHERTRUST_CA_FILE: emulator.caFile,
    CIPHERTRUST_USERNAME: PUBLISHER_USER,
    CIPHERTRUST_PASSWORD: PUBLISHER_PASSWORD,
    CIPHERTRUST_TIMEOUT_MS: '1000',
    CIPHERTRUST_MAX_ATTEMPTS: '3',
    CIPHERTRUST_RETRY_BUDGET_MS: '2000',
    JWKS_RETAIN_DEACTIVATED: '1h',
    LOG_LEVEL: 'debug',
    ...extra,
  };
}

/**
 * POSTs binary-mode CloudEvents of a type to a key-rotated process. The answer can overtake the
 * process's log lines on their way through the pipe: a cycle's answer is only returned once its
 * audit record (the last line it writes) has arrived.
 */
export function eventSender(keyRotated: RunningFunction): (type: string, headers?: Record<string, string>) => Promise<EventAnswer> {
  const auditCount = (): number => (keyRotated.output().match(/"audit":true/g) ?? []).length;
  return async (type, headers = {}) => {
    const before = auditCount();
    const response = await rawRequest(keyRotated.url, '/', {
      method: 'POST',
      headers: { 'ce-specversion': '1.0', 'ce-id': randomUUID(), 'ce-source': '/test', 'ce-type': type, ...headers },
    });
    if (CYCLE_STATUSES.has(response.status)) await eventually(() => Promise.resolve(auditCount() > before), 5000);
    return { status: response.status, body: JSON.parse(response.body.toString()) as Record<string, unknown> };
  };
}

/** The headers and body of a jwks-change-check PingSource tick (knative/base/pingsource.yaml), as Knative delivers it. */
export function changeCheckTick(): { headers: Record<string, string>; body: string } {
  return {
    headers: {
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-source': '/apis/v1/namespaces/jwks/pingsources/jwks-change-check',
      'ce-type': 'dev.knative.sources.ping',
      'ce-jwkscheck': 'changes',
      'content-type': 'application/json',
    },
    body: '{"reason":"change check"}',
  };
}

/** Sends change-check ticks; a tick that ran a publication answers once its audit record arrived. */
function changeCheckSender(keyRotated: RunningFunction): () => Promise<EventAnswer> {
  const auditCount = (): number => (keyRotated.output().match(/"audit":true/g) ?? []).length;
  return async () => {
    const before = auditCount();
    const response = await rawRequest(keyRotated.url, '/', { method: 'POST', ...changeCheckTick() });
    const body = JSON.parse(response.body.toString()) as Record<string, unknown>;
    if (body.outcome !== undefined) await eventually(() => Promise.resolve(auditCount() > before), 5000);
    return { status: response.status, body };
  };
}

/** An emulator with the publisher's user, a store, and key-rotated in its own process. */
export async function startPublisherStack(
  backendName: BackendName,
  options: { env?: Record<string, string>; emulator?: Omit<EmulatorOptions, 'tlsDir'>; backend?: TestBackend } = {},
): Promise<PublisherStack> {
  const emulator = await startTestEmulator({ users: { admin: 'admin', [PUBLISHER_USER]: PUBLISHER_PASSWORD }, ...options.emulator });
  // A backend given is the caller's (a tmpfs, say), but closed with the stack all the same.
  const backend = options.backend ?? (await openBackend(backendName));
  const env = publisherEnv(emulator, backend, options.env);
  let keyRotated: RunningFunction;
  try {
    keyRotated = await startFunction({ host: 'lean', target: 'key-rotated', env });
  } catch (error) {
    await emulator.stop();
    await backend.close();
    throw error;
  }
  await waitForFirstCycle(keyRotated.url);
  const sendEvent = eventSender(keyRotated);
  const publishedBytes = async (): Promise<Buffer | undefined> => {
    const result = await backend.store.read(KEY_SET_OBJECT, { maxBytes: 4 * 1024 * 1024 });
    return result.kind === 'found' ? result.object.body : undefined;
  };
  return {
    emulator,
    backend,
    keyRotated,
    env,
    ping: () => sendEvent('dev.knative.sources.ping'),
    sendEvent,
    changeCheck: changeCheckSender(keyRotated),
    publishedBytes,
    async publishedKids() {
      const bytes = await publishedBytes();
      if (bytes === undefined) return [];
      return (JSON.parse(bytes.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();
    },
    async close() {
      await keyRotated.stop();
      await emulator.stop();
      await backend.close();
    },
  };
}
