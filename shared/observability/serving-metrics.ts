import { Counter, Gauge, Registry, collectProcessMetricsSoon } from './prometheus.js';
import { RequestHistogram, type HistogramSeries } from './request-histogram.js';
import { REFUSAL_REASONS, type RefusalReason } from '../jwks/errors.js';
import { STORE_PROBLEMS, type KeySetCacheEvents, type StoreProblem } from '../serving/metrics-port.js';
import type { KeySetSnapshot } from '../serving/key-set-cache.js';

/** jwk_pem and jwk_crt: /jwk/{kid}.pem and /jwk/{kid}.crt; discovery: /.well-known/openid-configuration. */
export type Route = 'jwks' | 'jwk' | 'jwk_pem' | 'jwk_crt' | 'discovery' | 'healthz' | 'readyz' | 'metrics' | 'other';

/** Answers of one route and status since the last scrape, added to jwks_http_requests_total when scraped. */
interface UnscrapedCount {
  readonly labels: Record<'function' | 'route' | 'status', string>;
  count: number;
}

/** A route's request figures as the request path keeps them: plain numbers, no label lookup. */
interface RouteRecord {
  readonly latency: HistogramSeries;
  readonly byStatus: Map<number, UnscrapedCount>;
}

/**
 * The serving functions' metrics, in a registry of their own (no prom-client global state).
 * What each request records costs a few additions (issue 16: prom-client's Counter.inc and
 * Histogram.observe check and hash their labels on every call, a few percent of a request's CPU):
 * request counts wait in plain numbers until a scrape adds them to the counter, and the latency
 * histogram is a RequestHistogram. The series, their labels and their values are the same.
 */
export class ServingMetrics implements KeySetCacheEvents {
  readonly registry = new Registry();
  private readonly requests: Counter<'function' | 'route' | 'status'>;
  private readonly latency: RequestHistogram<'function' | 'route'>;
  private readonly storeReads: Counter<'function' | 'object' | 'result'>;
  private readonly storeErrors: Counter<'function' | 'reason'>;
  private readonly refusals: Counter<'function' | 'reason'>;
  private readonly lastCheck: Gauge<'function'>;
  private readonly routes = new Map<Route, RouteRecord>();
  /** Every route and status answered, in the order first answered: the counter's series order. */
  private readonly unscraped: UnscrapedCount[] = [];

  constructor(
    private readonly functionName: string,
    snapshot: () => KeySetSnapshot | undefined,
    now: () => number = Date.now,
    // Off for a second instance in one process (tests): the process metrics are the process's.
    options: { defaultMetrics: boolean } = { defaultMetrics: true },
  ) {
    const registers = [this.registry];
    const fn = functionName;
    const unscrapedCounts = this.unscraped;
    this.requests = new Counter({
      name: 'jwks_http_requests_total',
      help: 'HTTP requests answered, by function, route and status code.',
      labelNames: ['function', 'route', 'status'],
      registers,
      collect() {
        // In the order the series were first answered, as when each request incremented it.
        for (const unscraped of unscrapedCounts) {
          if (unscraped.count > 0) this.inc(unscraped.labels, unscraped.count);
          unscraped.count = 0;
        }
      },
    });
    this.latency = new RequestHistogram({
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
    let record = this.routes.get(route);
    if (record === undefined) {
      record = { latency: this.latency.labels(this.functionName, route), byStatus: new Map() };
      this.routes.set(route, record);
    }
    let unscraped = record.byStatus.get(status);
    if (unscraped === undefined) {
      unscraped = { labels: { function: this.functionName, route, status: String(status) }, count: 0 };
      record.byStatus.set(status, unscraped);
      this.unscraped.push(unscraped);
    }
    unscraped.count++;
    record.latency.observe(seconds);
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
