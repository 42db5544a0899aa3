/** The timer the loop runs on; tests inject a manual one. */
export interface LoopTimer {
  schedule(callback: () => void, delayMs: number): { cancel(): void };
}

export const realTimer: LoopTimer = {
  schedule(callback, delayMs) {
    const handle = setTimeout(callback, delayMs);
    // The HTTP server keeps the process alive; a pending check must not.
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

/**
 * Runs `check` now and then again `intervalMs` after each check ends, so checks never overlap and
 * a slow store is not hammered. Requests never wait on it.
 */
export class RevalidationLoop {
  private pending: { cancel(): void } | undefined;
  private stopped = true;

  constructor(
    private readonly check: () => Promise<void>,
    private readonly intervalMs: number,
    /** A check that throws is reported here; the loop goes on (an unhandled rejection would kill the process). */
    private readonly onError: (error: unknown) => void,
    private readonly timer: LoopTimer = realTimer,
  ) {}

  /** Starts the loop; resolves (never rejects) when the first check has finished. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.runOnce();
  }

  stop(): void {
    this.stopped = true;
    this.pending?.cancel();
    this.pending = undefined;
  }

  private async runOnce(): Promise<void> {
    try {
      await this.check();
    } catch (error) {
      this.onError(error);
    } finally {
      if (!this.stopped) this.pending = this.timer.schedule(() => void this.runOnce(), this.intervalMs);
    }
  }
}
