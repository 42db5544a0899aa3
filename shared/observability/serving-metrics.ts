import { Counter, Gauge, Histogram, Registry, collectProcessMetricsSoon } from './prometheus.js';
import { REFUSAL_REASONS, type RefusalReason } from '../jwks/errors.js';
import { STORE_PROBLEMS, type KeySetCacheEvents, type StoreProblem } from '../serving/metrics-port.js';
import type { KeySetSnapshot } from '../serving/key-set-cache.js';

export type Route = 'jwks' | 'jwk' | 'healthz' | 'readyz' | 'metrics' | 'other';

/**
 * The serving functions' metrics, in a registry of their own (no prom-client global state).
 * Request counters are pre-bound per route and status so the hot path does no label hashing.
 */
export class ServingMetrics implements KeySetCacheEvents {
  readonly registry = new Registry();
  private readonly requests: Counter<'function' | 'route' | 'status'>;
  private readonly latency: Histogram<'function' | 'route'>;
  private readonly storeReads: Counter<'function' | 'object' | 'result'>;
  private readonly storeErrors: Counter<'function' | 'reason'>;
  private readonly refusals: Counter<'function' | 'reason'>;
  private readonly lastCheck: Gauge<'function'>;
  private readonly boundRequests = new Map<string, { inc(): void }>();
  private readonly boundLatency = new Map<Route, { observe(value: number): void }>();

  constructor(
    private readonly functionName: string,
    snapshot: () => KeySetSnapshot | undefined,
    now: () => number = Date.now,
    // Off for a second instance in one process (tests): the process metrics are the process's.
    options: { defaultMetrics: boolean } = { defaultMetrics: true },
  ) {
    const registers = [this.registry];
    const fn = functionName;
    this.requests = new Counter({
      name: 'jwks_http_requests_total',
      help: 'HTTP requests answered, by function, route and status code.',
      labelNames: ['function', 'route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'jwks_http_request_duration_seconds',
      help: 'Time from request to response written, by function and route.',
      labelNames: ['function', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.storeReads = new Counter({
      name: 'jwks_store_reads_total',
      help: 'Reads of the key-set store by object (set or key file) and result; requests never cause one.',
      labelNames: ['function', 'object', 'result'],
      registers,
    });
    this.storeErrors = new Counter({
      name: 'jwks_store_errors_total',
      help: 'Failed or inconsistent reads of the key-set store, by reason.',
      labelNames: ['function', 'reason'],
      registers,
    });
    this.refusals = new Counter({
      name: 'jwks_set_refusals_total',
      help: 'Stored key sets refused (never served), by reason; private_key_material is a security event.',
      labelNames: ['function', 'reason'],
      registers,
    });
    this.lastCheck = new Gauge({
      name: 'jwks_store_last_successful_check_timestamp_seconds',
      help: 'Unix time of the last successful read of the key-set store.',
      labelNames: ['function'],
      registers,
    });
    new Gauge({
      name: 'jwks_keys_served',
      help: 'Keys in the set being served (0 before a set is loaded).',
      labelNames: ['function'],
      registers,
      collect() {
        this.set({ function: fn }, snapshot()?.keyCount ?? 0);
      },
    });
    new Gauge({
      name: 'jwks_served_set_age_seconds',
      help: 'Seconds since the served set was last modified in the store (absent before a set is loaded).',
      labelNames: ['function'],
      registers,
      collect() {
        const current = snapshot();
        if (current === undefined) this.reset();
        else this.set({ function: fn }, Math.max(0, (now() - current.set.lastModified.getTime()) / 1000));
      },
    });
    // Every series an alert reads exists at 0 from the start: increase() cannot see a counter's
    // first event if the series only appears with it.
    for (const reason of REFUSAL_REASONS) this.refusals.labels(fn, reason).inc(0);
    for (const reason of STORE_PROBLEMS) this.storeErrors.labels(fn, reason).inc(0);
    if (options.defaultMetrics) collectProcessMetricsSoon(this.registry);
  }

  /** Records one answered request. */
  observeRequest(route: Route, status: number, seconds: number): void {
    const key = `${route} ${status}`;
    let counter = this.boundRequests.get(key);
    if (counter === undefined) {
      counter = this.requests.labels(this.functionName, route, String(status));
      this.boundRequests.set(key, counter);
    }
    counter.inc();
    let histogram = this.boundLatency.get(route);
    if (histogram === undefined) {
      histogram = this.latency.labels(this.functionName, route);
      this.boundLatency.set(route, histogram);
    }
    histogram.observe(seconds);
  }

  storeRead(object: 'set' | 'key', result: 'unchanged' | 'found' | 'missing' | 'error'): void {
    this.storeReads.inc({ function: this.functionName, object, result });
  }

  storeError(problem: StoreProblem): void {
    this.storeErrors.inc({ function: this.functionName, reason: problem });
  }

  setRefused(reason: RefusalReason): void {
    this.refusals.inc({ function: this.functionName, reason });
  }

  checkSucceeded(at: Date): void {
    this.lastCheck.set({ function: this.functionName }, at.getTime() / 1000);
  }
}
