/**
 * prom-client's metric classes, loaded without the rest of the package. Its index also loads the
 * default process metrics (with @opentelemetry/api), Summary, Pushgateway and cluster support:
 * about 60 ms of a function's cold start, measured (bench/). The process metrics are added once
 * the function is up instead (collectProcessMetricsSoon).
 */
import type * as prom from 'prom-client';
import CounterClass from 'prom-client/lib/counter.js';
import GaugeClass from 'prom-client/lib/gauge.js';
import HistogramClass from 'prom-client/lib/histogram.js';
import RegistryClass from 'prom-client/lib/registry.js';

// Each name is both the class (a value) and its instance type, as in prom-client's own index.
export const Counter = CounterClass;
export type Counter<T extends string = string> = prom.Counter<T>;
export const Gauge = GaugeClass;
export type Gauge<T extends string = string> = prom.Gauge<T>;
export const Histogram = HistogramClass;
export type Histogram<T extends string = string> = prom.Histogram<T>;
export const Registry = RegistryClass;
export type Registry = prom.Registry;

/** How long after start the process metrics (CPU, memory, event loop, GC) join the registry. */
const PROCESS_METRICS_DELAY_MS = 1000;

/**
 * Registers prom-client's default process metrics a second after start, off the path to the
 * first answer. Scrapes in that second see the function's own metrics only.
 */
export function collectProcessMetricsSoon(registry: prom.Registry): void {
  const timer = setTimeout(() => {
    void import('prom-client/lib/defaultMetrics.js').then(({ default: collectDefaultMetrics }) => collectDefaultMetrics({ register: registry }));
  }, PROCESS_METRICS_DELAY_MS);
  timer.unref();
}
