import { Agent } from 'node:https';
import fetch, { AbortError, FetchError } from 'node-fetch';
import { CipherTrustError, type CipherTrustEndpoint } from './errors.js';
import { retrying, systemRetryClock, type RetryClock, type RetryPolicy } from './retry.js';

export interface TransportOptions {
  readonly baseUrl: string;
  readonly caPem: string | undefined;
  readonly clientCertPem: string | undefined;
  readonly clientKeyPem: string | undefined;
  /** Per attempt: connect, send, and read the whole answer. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly maxSockets: number;
  /** Called once per attempt: status code, or `timeout` / `network_error` / `too_large`, and its duration. */
  readonly observe?: (endpoint: CipherTrustEndpoint, outcome: string, seconds: number) => void;
  readonly clock?: RetryClock;
}

export interface CipherTrustRequest {
  readonly endpoint: CipherTrustEndpoint;
  readonly method: 'GET' | 'POST';
  /** Path under the base URL, already encoded, e.g. /api/v1/vault/keys2. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly bearer?: string;
}

export interface CipherTrustResponse {
  readonly status: number;
  /** Parsed JSON, or undefined when the body was empty or not JSON (error pages from a proxy). */
  readonly body: unknown;
}

/** CM answers these when it (or a proxy in front of it) is briefly unavailable. */
const RETRYABLE_STATUSES = new Set([502, 503, 504]);
/** Far above any real answer (a 1000-key page with public keys is a few MB); a larger one is cut off. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const TLS_FAILURE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|HOSTNAME|ALTNAME/;

/**
 * HTTPS to CipherTrust Manager: custom CA, optional client certificate, a timeout per attempt,
 * retries on 502/503/504, timeouts and network errors. Other statuses go back to the caller, which
 * knows what a 401 or a 404 means for its call. Redirects are refused: a bearer token must never
 * follow one to another host.
 */
export class CipherTrustTransport {
  private readonly agent: Agent;
  private readonly clock: RetryClock;

  constructor(private readonly options: TransportOptions) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets,
      ...(options.caPem !== undefined && { ca: options.caPem }),
      ...(options.clientCertPem !== undefined && { cert: options.clientCertPem }),
      ...(options.clientKeyPem !== undefined && { key: options.clientKeyPem }),
    });
    this.clock = options.clock ?? systemRetryClock;
  }

  async send(request: CipherTrustRequest): Promise<CipherTrustResponse> {
    const url = new URL(this.options.baseUrl + request.path);
    for (const [name, value] of Object.entries(request.query ?? {})) url.searchParams.set(name, value);
    let attempts = 0;
    try {
      return await retrying(
        async () => {
          attempts++;
          const response = await this.attempt(request, url);
          if (RETRYABLE_STATUSES.has(response.status)) {
            throw new CipherTrustError('unavailable', request.endpoint, `CipherTrust Manager answered ${response.status}`, {
              status: response.status,
            });
          }
          return response;
        },
        (error) => error instanceof CipherTrustError && ['unavailable', 'timeout', 'network'].includes(error.failure),
        this.options.retry,
        this.clock,
      );
    } catch (error) {
      if (error instanceof CipherTrustError) {
        const message = `${error.message} (${request.endpoint}, gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`;
        throw new CipherTrustError(error.failure, error.endpoint, message, { ...error.details, attempts }, { cause: error.cause });
      }
      throw error;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private async attempt(request: CipherTrustRequest, url: URL): Promise<CipherTrustResponse> {
    const started = process.hrtime.bigint();
    const observe = (outcome: string): void =>
      this.options.observe?.(request.endpoint, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (request.bearer !== undefined) headers.Authorization = `Bearer ${request.bearer}`;
    if (request.body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      const response = await fetch(url, {
        method: request.method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        agent: url.protocol === 'https:' ? this.agent : undefined,
        redirect: 'error',
        size: MAX_RESPONSE_BYTES,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      // The body is read under the same timeout: a CM that stalls mid-answer is a timeout too.
      const text = await response.text();
      observe(String(response.status));
      return { status: response.status, body: parseJson(text) };
    } catch (error) {
      if (error instanceof FetchError && error.type === 'max-size') {
        // Cut off at the bound, unread beyond it. Not a network fault: the same answer would come
        // again (and be read up to the bound again), so it is not retried.
        observe('too_large');
        throw new CipherTrustError('malformed_response', request.endpoint, `CipherTrust Manager's answer was larger than ${MAX_RESPONSE_BYTES} bytes; it was cut off there`, {}, { cause: error });
      }
      if (isTimeout(error)) {
        observe('timeout');
        throw new CipherTrustError('timeout', request.endpoint, `no answer from CipherTrust Manager within ${this.options.timeoutMs} ms`, {}, { cause: error });
      }
      observe('network_error');
      const reason = describe(error);
      if (error instanceof FetchError && error.type === 'no-redirect') {
        throw new CipherTrustError('rejected', request.endpoint, 'CipherTrust Manager answered with a redirect, which is not followed', {}, { cause: error });
      }
      // A certificate problem does not go away by retrying; say so plainly.
      const failure = TLS_FAILURE.test(reason) ? 'tls' : 'network';
      throw new CipherTrustError(failure, request.endpoint, `cannot reach CipherTrust Manager: ${reason}`, {}, { cause: error });
    }
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof AbortError || (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'));
}

/** A short reason without the URL's query or anything else from the request. */
function describe(error: unknown): string {
  if (error instanceof FetchError) return error.code ?? error.type;
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.name;
  return 'unknown error';
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
