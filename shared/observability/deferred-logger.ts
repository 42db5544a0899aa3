import type { Logger } from './logger.js';

type Level = keyof Logger;

interface HeldRecord {
  readonly level: Level;
  /** When it was logged (ms since the epoch): the time its line will say. */
  readonly time: number;
  readonly fields: object;
  readonly message: string | undefined;
}

/** Makes the real logger; its lines take their time from `now`. */
export type LoggerLoader = (now: () => number) => Promise<Logger>;

/** Records held before the load, at most (a start logs a handful); beyond, they are counted. */
export const MAX_HELD_RECORDS = 1_000;

/**
 * A logger usable from the first line of a start that loads the real one (pino) only when asked.
 * Loading pino costs a serving function about 20 ms, which it would otherwise spend before its
 * first answer (issue 6: cold start). Until the load, records are held in order, each with the
 * time it was logged; the load writes them with those times, and then every record goes
 * straight through. Levels are the real logger's business: held records are filtered as they are
 * written. Fields are held by reference, as pino would have read them at once: log fresh objects.
 *
 * What is held is lost if the process dies before the load: the hosts load it before every exit
 * they make (SIGTERM, a port that cannot be bound), and the serving runtime loads it after its
 * first answer or a second after start at the latest, so only a crash in that second loses lines.
 */
export class DeferredLogger implements Logger {
  private held: HeldRecord[] = [];
  private dropped = 0;
  private target: Logger | undefined;
  private loading: Promise<void> | undefined;
  /** The time of the held record being written, read by the real logger's clock. */
  private writingHeldAt: number | undefined;

  constructor(
    private readonly loadLogger: LoggerLoader,
    private readonly clock: () => number = Date.now,
  ) {}

  fatal(fields: object, message?: string): void {
    this.take('fatal', fields, message);
  }
  error(fields: object, message?: string): void {
    this.take('error', fields, message);
  }
  warn(fields: object, message?: string): void {
    this.take('warn', fields, message);
  }
  info(fields: object, message?: string): void {
    this.take('info', fields, message);
  }
  debug(fields: object, message?: string): void {
    this.take('debug', fields, message);
  }

  /** True once the real logger writes every record as it comes. */
  get loaded(): boolean {
    return this.target !== undefined;
  }

  /**
   * Loads the real logger (once; later calls share the first) and writes what is held. Resolves
   * when every record logged before the call is written.
   */
  load(): Promise<void> {
    this.loading ??= this.loadLogger(() => this.writingHeldAt ?? this.clock()).then((target) => this.writeHeld(target));
    return this.loading;
  }

  /** load() after `delayMs` at the latest; the timer keeps no process alive. */
  loadWithin(delayMs: number): void {
    setTimeout(() => void this.load(), delayMs).unref();
  }

  private take(level: Level, fields: object, message: string | undefined): void {
    if (this.target !== undefined) {
      this.target[level](fields, message);
    } else if (this.held.length < MAX_HELD_RECORDS) {
      this.held.push({ level, time: this.clock(), fields, message });
    } else {
      this.dropped++;
    }
  }

  private writeHeld(target: Logger): void {
    try {
      for (const record of this.held) {
        this.writingHeldAt = record.time;
        target[record.level](record.fields, record.message);
      }
    } finally {
      this.writingHeldAt = undefined;
    }
    if (this.dropped > 0) {
      target.warn({ event: 'log_records_dropped', dropped: this.dropped }, `${this.dropped} log records were dropped while the logger loaded`);
    }
    this.held = [];
    this.target = target;
  }
}
