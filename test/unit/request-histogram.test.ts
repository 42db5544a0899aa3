/**
 * The serving functions record each request with plain additions (issue 16) instead of
 * prom-client's Counter.inc and Histogram.observe; what /metrics answers must not change: the
 * same series, labels, buckets and values, in the same order, as prom-client's own classes fed the
 * same requests. Each check compares against prom-client itself, not against a written-out text.
 */
import { Counter, Histogram, Registry } from '../../shared/observability/prometheus.js';
import { RequestHistogram } from '../../shared/observability/request-histogram.js';
import { ServingMetrics, type Route } from '../../shared/observability/serving-metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const CONFIG = { name: 'jwks_http_request_duration_seconds', help: 'Time from request to response written, by function and route.', labelNames: ['function', 'route'] as const, buckets: BUCKETS };

/** Values on and around every bound, above the last one, zero, and sums that do not add up exactly in binary. */
const VALUES = [0, 0.0001, 0.0005, 0.00050001, 0.001, 0.0024, 0.0025, 0.003, 0.005, 0.01, 0.1, 0.3, 1, 1.5, 7, 0.1 + 0.2, 0.000123456];

describe('RequestHistogram', () => {
  function pair(): { ours: RequestHistogram<'function' | 'route'>; theirs: Histogram<'function' | 'route'>; ourRegistry: Registry; theirRegistry: Registry } {
    const ourRegistry = new Registry();
    const theirRegistry = new Registry();
    const ours = new RequestHistogram({ ...CONFIG, registers: [ourRegistry] });
    const theirs = new Histogram({ ...CONFIG, labelNames: [...CONFIG.labelNames], registers: [theirRegistry] });
    return { ours, theirs, ourRegistry, theirRegistry };
  }

  async function expectSameExposition(ourRegistry: Registry, theirRegistry: Registry): Promise<void> {
    expect(await ourRegistry.metrics()).toBe(await theirRegistry.metrics());
    expect(await ourRegistry.getMetricsAsJSON()).toEqual(await theirRegistry.getMetricsAsJSON());
  }

  it('exposes what prom-client exposes for the same observations: text and JSON, series in the order first observed', async () => {
    const { ours, theirs, ourRegistry, theirRegistry } = pair();
    await expectSameExposition(ourRegistry, theirRegistry);
    // Bound before observed, in another order than observed: the order is that of first observation.
    const ourSeries = [ours.labels('jwks-get', 'metrics'), ours.labels('jwks-get', 'jwks'), ours.labels('jwk-get', 'jwk')];
    const theirSeries = [theirs.labels('jwks-get', 'metrics'), theirs.labels('jwks-get', 'jwks'), theirs.labels('jwk-get', 'jwk')];
    await expectSameExposition(ourRegistry, theirRegistry);
    VALUES.forEach((value, index) => {
      const series = (index * 7 + 1) % 3;
      ourSeries[series]!.observe(value);
      theirSeries[series]!.observe(value);
    });
    const text = await ourRegistry.metrics();
    expect(text).toContain('jwks_http_request_duration_seconds_bucket{le="0.0005",function="jwks-get",route="jwks"}');
    await expectSameExposition(ourRegistry, theirRegistry);
    // The same label values bound twice are one series.
    ours.labels('jwks-get', 'jwks').observe(0.002);
    theirs.labels('jwks-get', 'jwks').observe(0.002);
    await expectSameExposition(ourRegistry, theirRegistry);
  });

  it('after a reset, exposes nothing until observed again, through the series bound before', async () => {
    const { ours, theirs, ourRegistry, theirRegistry } = pair();
    const [a, b] = [ours.labels('f', 'a'), ours.labels('f', 'b')];
    const [c, d] = [theirs.labels('f', 'a'), theirs.labels('f', 'b')];
    a.observe(0.01);
    c.observe(0.01);
    ourRegistry.resetMetrics();
    theirRegistry.resetMetrics();
    await expectSameExposition(ourRegistry, theirRegistry);
    b.observe(0.2);
    d.observe(0.2);
    a.observe(3);
    c.observe(3);
    await expectSameExposition(ourRegistry, theirRegistry);
  });

  it('refuses a wrong number of label values and a value that is not a finite number', () => {
    const { ours } = pair();
    expect(() => ours.labels('jwks-get')).toThrow(/2 label values expected, got 1/);
    expect(() => ours.labels('jwks-get', 'jwks').observe(Number.NaN)).toThrow(TypeError);
  });
});

describe('ServingMetrics request figures', () => {
  /** The request metrics as prom-client's classes kept them before issue 16: one inc and one observe per request. */
  function reference(): { registry: Registry; observe(route: Route, status: number, seconds: number): void } {
    const registry = new Registry();
    const requests = new Counter({ name: 'jwks_http_requests_total', help: 'HTTP requests answered, by function, route and status code.', labelNames: ['function', 'route', 'status'], registers: [registry] });
    const latency = new Histogram({ ...CONFIG, labelNames: [...CONFIG.labelNames], registers: [registry] });
    return {
      registry,
      observe: (route, status, seconds) => {
        requests.labels('jwks-get', route, String(status)).inc();
        latency.labels('jwks-get', route).observe(seconds);
      },
    };
  }

  async function requestSeries(registry: Registry): Promise<string> {
    return `${await registry.getSingleMetricAsString('jwks_http_requests_total')}\n${await registry.getSingleMetricAsString('jwks_http_request_duration_seconds')}`;
  }

  it('/metrics answers the same request series as one prom-client inc and observe per request, scrape after scrape', async () => {
    const metrics = new ServingMetrics('jwks-get', () => undefined, Date.now, { defaultMetrics: false });
    const expected = reference();
    const requests: [Route, number][] = [
      ['jwks', 200],
      ['jwks', 304],
      ['other', 404],
      ['jwks', 200],
      ['metrics', 200],
      ['jwks', 503],
      ['healthz', 200],
    ];
    expect(await requestSeries(metrics.registry)).toBe(await requestSeries(expected.registry));
    for (let scrape = 0; scrape < 3; scrape++) {
      requests.forEach(([route, status], index) => {
        if (index % (scrape + 1) !== 0) return;
        const seconds = VALUES[(index + scrape) % VALUES.length] as number;
        metrics.observeRequest(route, status, seconds);
        expected.observe(route, status, seconds);
      });
      const text = await requestSeries(metrics.registry);
      expect(text).toBe(await requestSeries(expected.registry));
      expect(text).toMatch(/^jwks_http_requests_total\{function="jwks-get",route="jwks",status="200"\} \d+$/m);
      // A scrape changes nothing: asked again, the same figures.
      expect(await requestSeries(metrics.registry)).toBe(text);
    }
    expect(await metrics.registry.metrics()).toContain('jwks_http_requests_total{function="jwks-get",route="jwks",status="200"} 5');
  });
});
