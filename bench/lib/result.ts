/** What every scenario returns: measured figures, and the targets of issue 6 checked against them. */
export interface ScenarioResult {
  /** e.g. 'throughput', 'rotation-under-load', 'cold-start', 'propagation', 'publication', 'memory'. */
  readonly scenario: string;
  /** One row per thing measured (a target host, a backend...): its figures, units in the key names. */
  readonly rows: readonly MeasuredRow[];
  readonly targets: readonly TargetCheck[];
  /** Anything a reader must know to trust the figures (tool used, fallbacks, errors seen). */
  readonly notes: readonly string[];
}

export interface MeasuredRow {
  readonly subject: string;
  readonly figures: Readonly<Record<string, number>>;
}

export interface TargetCheck {
  readonly target: string;
  readonly value: number;
  readonly limit: number;
  readonly comparison: '<=' | '>=';
  readonly unit: string;
  readonly pass: boolean;
}

export function check(target: string, value: number, comparison: '<=' | '>=', limit: number, unit: string): TargetCheck {
  return { target, value, limit, comparison, unit, pass: comparison === '<=' ? value <= limit : value >= limit };
}

/** Options every scenario takes; durations shortened by BENCH_QUICK=1 for a smoke run. */
export interface BenchOptions {
  /** Seconds of load per throughput measurement (default 10; quick: 2). */
  readonly loadSeconds: number;
  /** Connections for load (issue 6: 50). */
  readonly connections: number;
  /** Repetitions for start-up and propagation measurements (default 10 and 20; quick: 3). */
  readonly coldStarts: number;
  readonly rotations: number;
  /** Scale of the publication scenario (default 10,000 keys, 1,000 selected; quick: 1,000 and 100). */
  readonly totalKeys: number;
  readonly selectedKeys: number;
  /** Seconds of load per server in the sustained-memory scenario (default 90; quick: 5). */
  readonly sustainedSeconds: number;
  readonly quick: boolean;
}
