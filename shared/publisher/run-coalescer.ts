interface Batch<T, R> {
  readonly requests: T[];
  readonly result: Promise<R>;
  start(): void;
}

/**
 * At most one run in flight and at most one queued. A request made while a run is in flight joins
 * the queued run, which starts when the current one ends and so sees everything that happened
 * before the request: a burst of any size costs two runs. Each caller gets the result of the run
 * that covered its request.
 */
export class RunCoalescer<T, R> {
  private running: Batch<T, R> | undefined;
  private queued: Batch<T, R> | undefined;

  constructor(private readonly run: (requests: readonly T[]) => Promise<R>) {}

  /** Several requests at once (a batch of events) are always covered by one run. */
  request(...requests: T[]): Promise<R> {
    if (this.running === undefined) {
      this.running = this.createBatch(requests);
      this.running.start();
      return this.running.result;
    }
    this.queued ??= this.createBatch([]);
    this.queued.requests.push(...requests);
    return this.queued.result;
  }

  /** Whether a run is in flight (shown by key-rotated's /readyz). */
  get busy(): boolean {
    return this.running !== undefined;
  }

  private createBatch(requests: T[]): Batch<T, R> {
    let start!: () => void;
    const started = new Promise<void>((resolve) => (start = resolve));
    const result = started.then(() => this.run(requests));
    const settle = (): void => {
      this.running = this.queued;
      this.queued = undefined;
      this.running?.start();
    };
    result.then(settle, settle);
    return { requests, result, start };
  }
}
