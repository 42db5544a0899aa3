import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

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
}

/** JSON lines with ISO time and level names, the shape the SIEM pipeline parses. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
