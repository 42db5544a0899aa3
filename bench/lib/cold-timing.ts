/**
 * Timing helpers for the cold-start and propagation scenarios: a poll with a fresh connection per
 * attempt (what a client arriving after the event sees, no kept-alive socket) and percentiles.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawRequest, type RawResponse } from '../../test/support/http.js';

export interface PollOptions {
  /** Pause after each attempt that does not satisfy `accept` (issue 6: 5-10 ms). */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Stops the poll early (the process under test died): its message becomes the error. */
  readonly abort?: () => string | undefined;
}

/**
 * GETs `path` (agent: false, so a new TCP connection every time) until `accept` holds for an
 * answer; refused connections count as "not yet". Returns performance.now() at the accepted answer.
 */
export async function pollUntil(baseUrl: string, path: string, accept: (response: RawResponse) => boolean, options: PollOptions): Promise<number> {
  const deadline = performance.now() + options.timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const response = await rawRequest(baseUrl, path, { timeoutMs: 2000 });
      if (accept(response)) return performance.now();
      last = `status ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    const aborted = options.abort?.();
    if (aborted !== undefined) throw new Error(aborted);
    if (performance.now() > deadline) throw new Error(`${baseUrl}${path}: not accepted within ${options.timeoutMs} ms (last: ${last})`);
    await sleep(options.intervalMs);
  }
}

/** Nearest-rank percentile (p in 0..100) of the values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Milliseconds rounded to 0.1, for result figures. */
export function ms(value: number): number {
  return Math.round(value * 10) / 10;
}

/** The usual figures of a series of durations in milliseconds (p50_ms is the median). */
export function summary(durationsMs: readonly number[], percentiles: readonly number[]): Record<string, number> {
  const figures: Record<string, number> = { runs: durationsMs.length };
  for (const p of percentiles) figures[`p${p}_ms`] = ms(percentile(durationsMs, p));
  figures.min_ms = ms(Math.min(...durationsMs));
  figures.max_ms = ms(Math.max(...durationsMs));
  return figures;
}
