import { createLogger } from '../../shared/observability/logger.js';

/** A real pino logger whose lines are kept for assertions. */
export function capturingLogger(service = 'test'): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; text: () => string } {
  const written: string[] = [];
  const logger = createLogger({ service, level: 'debug', destination: { write: (line: string) => void written.push(line) } });
  return {
    logger,
    text: () => written.join(''),
    lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
