import { createLogger } from '../observability/logger.js';
import { ConfigError } from './env.js';

/** sysexits.h EX_CONFIG: the process was given a configuration it refuses. Documented in README. */
export const EXIT_CONFIG = 78;

/**
 * Runs a function's start-up; on a refused configuration, logs one line naming every bad variable
 * and exits non-zero, so the pod fails fast instead of serving with a guessed setting.
 */
export function exitOnConfigError<T>(service: string, start: () => T): T {
  try {
    return start();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger({ service, level: 'info' }).fatal({ event: 'config_refused', problems: error.problems }, error.message);
    process.exit(EXIT_CONFIG);
  }
}
