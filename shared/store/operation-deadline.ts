import { StoreError } from './store.js';

/**
 * Bounds store operations that cannot be cancelled. A system call on a hung network file system
 * (an NFS server that stopped answering) blocks its libuv thread until the server comes back,
 * however long that is, and the caller's promise with it: a serving function would stop
 * revalidating without a word, a publication cycle would never end. Here the caller gets
 * StoreError('timeout') after `timeoutMs`. While an operation is still stuck, new ones fail at
 * once instead of tying up more of libuv's four threads; they start again when it returns.
 */
export class OperationDeadline {
  private stuck = 0;

  constructor(private readonly timeoutMs: number) {}

  async run<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.stuck > 0) {
      throw new StoreError('timeout', `${what}: not started, an earlier operation on the store has not returned after ${this.timeoutMs} ms`);
    }
    const pending = operation();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), this.timeoutMs);
    });
    try {
      const first = await Promise.race([pending, expired]);
      if (first !== 'expired') return first;
    } finally {
      clearTimeout(timer);
    }
    this.stuck++;
    const returned = (): void => {
      this.stuck--;
    };
    pending.then(returned, returned);
    throw new StoreError('timeout', `${what}: no answer from the file system within ${this.timeoutMs} ms`);
  }
}
