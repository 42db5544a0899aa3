import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/**
 * What the code logs through: fields and a message, at one of pino's levels. A pino logger is
 * one; so is DeferredLogger (deferred-logger.ts), which loads pino only when asked to.
 */
export interface Logger {
  fatal(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  debug(fields: object, message?: string): void;
}

/**
 * Paths pino blanks before a line is written. Code never logs secrets on purpose; this is the net
 * under that rule for a credential or a private JWK member that reaches a log object by mistake.
 */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  'token',
  'jwt',
  'refresh_token',
  'authorization',
  'secret',
  '*.password',
  '*.token',
  '*.jwt',
  '*.refresh_token',
  '*.authorization',
  '*.Authorization',
  '*.secret',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.d',
  '*.p',
  '*.q',
  '*.dp',
  '*.dq',
  '*.qi',
  '*.k',
];

export interface LoggerOptions {
  readonly service: string;
  readonly level: string;
  /** Tests capture output here; production writes to stdout for the cluster's log collector. */
  readonly destination?: DestinationStream;
  /** The time each line says, in ms since the epoch: a record logged earlier and written later (DeferredLogger) keeps its own. */
  readonly now?: () => number;
}

/** JSON lines with ISO time and level names, the shape the SIEM pipeline parses. */
export function createLogger(options: LoggerOptions): PinoLogger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: options.now === undefined ? pino.stdTimeFunctions.isoTime : isoTimeOf(options.now),
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** pino's isoTime, reading its clock from `now`. */
function isoTimeOf(now: () => number): () => string {
  return () => `,"time":"${new Date(now()).toISOString()}"`;
}
