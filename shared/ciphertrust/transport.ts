import { Agent } from 'node:https';
import fetch, { AbortError, FetchError } from 'node-fetch';
import { CipherTrustError, type CipherTrustEndpoint } from './errors.js';
import { CipherTrustNodes, type NodeChange } from './nodes.js';
import { retrying, systemRetryClock, type RetryClock, type RetryPolicy } from './retry.js';

export interface TransportOptions {
  /** Base URLs of CM's nodes in order of preference: one for a single CM or a load balancer. */
  readonly nodes: readonly string[];
  /** How long a node that failed is tried only after the others. Default one minute. */
  readonly nodeDownMs?: number;
  /** Told when a node is marked down and when it answers again (to log it). */
  readonly onNodeChange?: (change: NodeChange) => void;
  readonly caPem: string | undefined;
  readonly clientCertPem: string | undefined;
  readonly clientKeyPem: string | undefined;
  /** Per attempt: connect, send, and read the whole answer. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly maxSockets: number;
  /** Called once per attempt: status code, or `timeout` / `network_error` / `too_large`, its duration, and the node. */
  readonly observe?: (endpoint: CipherTrustEndpoint, outcome: string, seconds: number, node: string) => void;
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
 *
 * With several nodes (a CM cluster, where any node answers any operation), each try is a round over
 * the nodes, healthy ones first in the configured order: a node that refuses the connection, times
 * out, answers 5xx or presents a certificate the CA does not vouch for is marked down and the
 * request moves on to the next node at once. The retry policy (attempts, budget, backoff) applies
 * to rounds, so one node is exactly the old behaviour, and a cluster with every node down fails as
 * a single CM would. Nodes are tried in a fixed order,
 * not rotated: the listing and the key reads of a cycle then come from one node, which sees one
 * replicated state, and the JWT it issued keeps working (whether another node honours it is not
 * known).
 */
export class CipherTrustTransport {
  private readonly agent: Agent;
  private readonly clock: RetryClock;
  private readonly nodes: CipherTrustNodes;

  constructor(private readonly options: TransportOptions) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets,
      ...(options.caPem !== undefined && { ca: options.caPem }),
      ...(options.clientCertPem !== undefined && { cert: options.clientCertPem }),
      ...(options.clientKeyPem !== undefined && { key: options.clientKeyPem }),
    });
    this.clock = options.clock ?? systemRetryClock;
    this.nodes = new CipherTrustNodes(options.nodes, options.nodeDownMs ?? 60_000, () => this.clock.now(), options.onNodeChange);
  }

  async send(request: CipherTrustRequest): Promise<CipherTrustResponse> {
    let attempts = 0;
    const round = async (): Promise<CipherTrustResponse> => {
      const order = this.nodes.order();
      let lastError: unknown;
      for (const [index, node] of order.entries()) {
        attempts++;
        const others = index < order.length - 1;
        try {
          const response = await this.attempt(request, node);
          // A 500 is not retried on a single CM (it would answer the same), but another node may answer.
          if (RETRYABLE_STATUSES.has(response.status) || (response.status >= 500 && others)) {
            throw new CipherTrustError('unavailable', request.endpoint, `CipherTrust Manager answered ${response.status}`, {
              status: response.status,
            });
          }
          this.nodes.answered(node);
          return response;
        } catch (error) {
          // A certificate problem is not retried, but it may be one node's (each node has its own
          // certificate, and one may expire first): the others are asked before it fails the call.
          if (!isNodeFailure(error) && !(others && error instanceof CipherTrustError && error.failure === 'tls')) throw error;
          this.nodes.failed(node, (error as CipherTrustError).message);
          lastError = error;
        }
      }
      throw lastError;
    };
    try {
      return await retrying(round, isNodeFailure, this.options.retry, this.clock);
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

  private async attempt(request: CipherTrustRequest, node: string): Promise<CipherTrustResponse> {
    const url = new URL(node + request.path);
    for (const [name, value] of Object.entries(request.query ?? {})) url.searchParams.set(name, value);
    const started = process.hrtime.bigint();
    const observe = (outcome: string): void =>
      this.options.observe?.(request.endpoint, outcome, Number(process.hrtime.bigint() - started) / 1e9, node);
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

/** The node, or the way to it, failed: another node (or a later try) may answer. */
function isNodeFailure(error: unknown): boolean {
  return error instanceof CipherTrustError && ['unavailable', 'timeout', 'network'].includes(error.failure);
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
