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
    return refuseConfiguration(service, error);
  }
}

/** Logs the refusal (one fatal line, the variables named, never their secrets) and exits 78. */
export function refuseConfiguration(service: string, error: ConfigError): never {
  // Synchronous on Linux for files, pipes and terminals: the line is out before the exit.
  process.stdout.write(`${configRefusedLine(service, error, new Date())}\n`);
  process.exit(EXIT_CONFIG);
}

/**
 * The refusal as the logger writes a fatal record (createLogger: level name, ISO time, service,
 * fields, msg), built here instead: importing the logger would load pino into every function's
 * start, which the serving functions defer (issue 6). Its fields are names and short messages, none
 * that the logger redacts; test/unit/exit-on-config-error.test.ts holds it equal to pino's line.
 */
export function configRefusedLine(service: string, error: ConfigError, time: Date): string {
  return JSON.stringify({
    level: 'fatal',
    time: time.toISOString(),
    service,
    event: 'config_refused',
    problems: error.problems,
    msg: error.message,
  });
}
