/** Retry with exponential backoff and jitter, bounded in attempts and in total time. */
export interface RetryPolicy {
  readonly maxAttempts: number;
  /** No retry starts once this much time has gone by since the first attempt. */
  readonly budgetMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Injected so tests run retries without waiting and with a known jitter. */
export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Uniform in [0, 1). */
  random(): number;
}

export const systemRetryClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

/**
 * Runs `operation` until it succeeds, throws an error `isRetryable` rejects, runs out of attempts,
 * or the next wait would end past the budget; then the last error is rethrown.
 */
export async function retrying<T>(
  operation: (attempt: number) => Promise<T>,
  isRetryable: (error: unknown) => boolean,
  policy: RetryPolicy,
  clock: RetryClock = systemRetryClock,
): Promise<T> {
  const start = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!isRetryable(error) || attempt >= policy.maxAttempts) throw error;
      const delay = backoffDelay(attempt, policy, clock.random());
      if (clock.now() - start + delay > policy.budgetMs) throw error;
      await clock.sleep(delay);
    }
  }
}

/**
 * "Equal jitter": half the exponential step is fixed, half random, so replicas that failed together
 * spread out without any of them retrying at once.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: number): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + (step / 2) * random);
}
