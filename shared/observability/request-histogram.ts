import type * as prom from 'prom-client';

/** One label set's series, bound once: what the request path calls. */
export interface HistogramSeries {
  observe(value: number): void;
}

export interface RequestHistogramConfig<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly T[];
  readonly buckets: readonly number[];
  readonly registers: readonly prom.Registry[];
}

type LabelSet = Readonly<Record<string, string | number>>;

/** A value as prom-client's Histogram hands it to the registry (members in its order). */
interface ExportedValue {
  readonly labels: LabelSet;
  readonly sharedLabels?: LabelSet;
  readonly value: number;
  readonly metricName: string;
  readonly exemplar: null | undefined;
}

interface ExportedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly values: readonly ExportedValue[];
  readonly aggregator: 'sum';
}

interface Series {
  readonly labels: Record<string, string>;
  /** Observations per bucket, not cumulative; one past the last bound counts none (as prom-client). */
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram for a per-request observation (issue 16). prom-client's Histogram checks
 * and hashes the labels and looks the bucket up by a number turned into a property name on every
 * observe, even through labels(): a few percent of a served request's CPU. Here a series is bound
 * to its labels once and an observation is a bounds loop and three additions. The registry formats
 * it as it formats prom-client's own Histogram: get() and getForPromString() return the same values
 * in the same order (test/unit/request-histogram.test.ts compares the two, text and JSON).
 */
export class RequestHistogram<T extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly T[];
  private readonly upperBounds: readonly number[];
  private readonly bound = new Map<string, Series>();
  /** Series in the order of their first observation since the last reset, as prom-client lists them. */
  private observed: Series[] = [];

  constructor(config: RequestHistogramConfig<T>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.upperBounds = [...config.buckets];
    // A metric as prom-client's registry takes it: it calls get(), getForPromString() and reset().
    for (const registry of config.registers) registry.registerMetric(this as unknown as prom.Metric);
  }

  /** The series of these label values (in labelNames order), bound for the request path. */
  labels(...values: string[]): HistogramSeries {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.join('\u0000');
    let series = this.bound.get(key);
    if (series === undefined) {
      const labels = Object.fromEntries(this.labelNames.map((name, index) => [name, values[index] as string]));
      series = { labels, counts: this.upperBounds.map(() => 0), sum: 0, count: 0 };
      this.bound.set(key, series);
    }
    const observedSeries = series;
    return { observe: (value) => this.observe(observedSeries, value) };
  }

  private observe(series: Series, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a finite number: ${value}`);
    const bounds = this.upperBounds;
    for (let index = 0; index < bounds.length; index++) {
      if (value <= (bounds[index] as number)) {
        (series.counts[index] as number)++;
        break;
      }
    }
    if (series.count === 0) this.observed.push(series);
    series.sum += value;
    series.count++;
  }

  /** Every series back to nothing; bound series keep working (prom-client's reset). */
  reset(): void {
    for (const series of this.observed) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
    this.observed = [];
  }

  /** What prom-client's Histogram gives the registry's text format: le apart, the series' labels shared. */
  getForPromString(): Promise<ExportedMetric> {
    const bucketName = `${this.name}_bucket`;
    const values: ExportedValue[] = [];
    for (const series of this.observed) {
      let cumulative = 0;
      this.upperBounds.forEach((upperBound, index) => {
        cumulative += series.counts[index] as number;
        values.push(valuePair({ le: upperBound }, cumulative, bucketName, null, series.labels));
      });
      values.push(
        valuePair({ le: '+Inf' }, series.count, bucketName, null, series.labels),
        valuePair({}, series.sum, `${this.name}_sum`, undefined, series.labels),
        valuePair({}, series.count, `${this.name}_count`, undefined, series.labels),
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** What prom-client's Histogram gives getMetricsAsJSON: the shared labels merged after le. */
  async get(): Promise<ExportedMetric> {
    const data = await this.getForPromString();
    const values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return { ...data, values };
  }
}

function valuePair(labels: LabelSet, value: number, metricName: string, exemplar: null | undefined, sharedLabels: LabelSet): ExportedValue {
  return { labels, sharedLabels, value, metricName, exemplar };
}
