import { backoffDelay, retrying, type RetryClock } from '../../shared/ciphertrust/retry.js';
import { RunCoalescer } from '../../shared/publisher/run-coalescer.js';
import { mapConcurrently } from '../../shared/util/map-concurrently.js';

/** A clock that only moves when the code under test sleeps. */
function fakeClock(random = 0.5): RetryClock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: (ms) => {
      slept.push(ms);
      now += ms;
      return Promise.resolve();
    },
    random: () => random,
  };
}

const policy = { maxAttempts: 5, budgetMs: 10_000, baseDelayMs: 200, maxDelayMs: 2000 };
const retryable = (error: unknown): boolean => (error as Error).message === 'retry';

describe('retrying', () => {
  it('retries retryable failures with growing, jittered delays, then succeeds', async () => {
    const clock = fakeClock(0.5);
    let calls = 0;
    const result = await retrying(
      () => (++calls < 4 ? Promise.reject(new Error('retry')) : Promise.resolve('ok')),
      retryable,
      policy,
      clock,
    );
    expect(result).toBe('ok');
    expect(clock.slept).toEqual([150, 300, 600]);
  });

  it('keeps half of each step fixed and caps the step', () => {
    expect(backoffDelay(1, policy, 0)).toBe(100);
    expect(backoffDelay(1, policy, 0.999)).toBe(200);
    expect(backoffDelay(10, policy, 0.999)).toBe(1999);
    expect(backoffDelay(10, policy, 0)).toBe(1000);
  });

  it('stops after maxAttempts and rethrows the last error', async () => {
    const clock = fakeClock();
    let calls = 0;
    await expect(retrying(() => ((calls++, Promise.reject(new Error('retry')))), retryable, policy, clock)).rejects.toThrow('retry');
    expect(calls).toBe(5);
  });

  it('stops when the next wait would pass the time budget', async () => {
    const clock = fakeClock(1);
    let calls = 0;
    await expect(
      retrying(() => ((calls++, Promise.reject(new Error('retry')))), retryable, { ...policy, maxAttempts: 100, budgetMs: 1000 }, clock),
    ).rejects.toThrow('retry');
    // 200 + 400 = 600 ms waited; the next 800 ms wait would end at 1400 ms, past the budget.
    expect(clock.slept).toEqual([200, 400]);
    expect(calls).toBe(3);
  });

  it('never retries an error the predicate rejects', async () => {
    let calls = 0;
    await expect(retrying(() => ((calls++, Promise.reject(new Error('fatal')))), retryable, policy, fakeClock())).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });
});

describe('RunCoalescer', () => {
  function deferredRuns() {
    const runs: { requests: readonly number[]; finish(value: string): void; fail(error: Error): void }[] = [];
    const coalescer = new RunCoalescer<number, string>(
      (requests) =>
        new Promise((resolve, reject) => {
          runs.push({ requests: [...requests], finish: resolve, fail: reject });
        }),
    );
    return { runs, coalescer };
  }

  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('turns a burst of 100 requests into two runs: the one in flight and one queued', async () => {
    const { runs, coalescer } = deferredRuns();
    const results = Array.from({ length: 100 }, (_, index) => coalescer.request(index));
    await tick();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.requests).toEqual([0]);
    runs[0]!.finish('first');
    await tick();
    expect(runs).toHaveLength(2);
    expect(runs[1]!.requests).toHaveLength(99);
    runs[1]!.finish('second');
    const settled = await Promise.all(results);
    expect(settled[0]).toBe('first');
    expect(new Set(settled.slice(1))).toEqual(new Set(['second']));
    expect(runs).toHaveLength(2);
    expect(coalescer.busy).toBe(false);
  });

  it('gives each caller the failure of the run that covered it, and keeps working after', async () => {
    const { runs, coalescer } = deferredRuns();
    const first = coalescer.request(1);
    const second = coalescer.request(2);
    await tick();
    runs[0]!.fail(new Error('cm down'));
    await expect(first).rejects.toThrow('cm down');
    await tick();
    runs[1]!.finish('recovered');
    await expect(second).resolves.toBe('recovered');
    const third = coalescer.request(3);
    await tick();
    runs[2]!.finish('again');
    await expect(third).resolves.toBe('again');
  });

  it('covers the requests given together with one run', async () => {
    const { runs, coalescer } = deferredRuns();
    const result = coalescer.request(1, 2, 3);
    await tick();
    expect(runs.map((run) => run.requests)).toEqual([[1, 2, 3]]);
    runs[0]!.finish('done');
    await expect(result).resolves.toBe('done');
  });
});

describe('mapConcurrently', () => {
  it('keeps at most `limit` calls in flight and returns results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await mapConcurrently([5, 1, 4, 2, 3, 0], 2, async (value) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, value));
      inFlight--;
      return value * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(2);
  });

  it('rejects with the first failure and starts nothing after it', async () => {
    const started: number[] = [];
    await expect(
      mapConcurrently([1, 2, 3, 4], 1, (value) => {
        started.push(value);
        return value === 2 ? Promise.reject(new Error('boom')) : Promise.resolve(value);
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });
});
