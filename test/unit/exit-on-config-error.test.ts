/**
 * The configuration refusal line is built without pino (so a serving function's start does not
 * load it): it must be the very line pino writes for the same fatal record.
 */
import fc from 'fast-check';
import { ConfigError } from '../../shared/config/env.js';
import { configRefusedLine } from '../../shared/config/exit-on-config-error.js';
import { createLogger } from '../../shared/observability/logger.js';

describe('the configuration refusal line', () => {
  it("is the line pino writes for the same fatal record, byte for byte, whatever the problems say", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 4 }), fc.constantFrom('host', 'jwks-get', 'event-relay'), (problems, service) => {
        const error = new ConfigError(problems);
        const time = Date.parse('2026-11-24T10:00:00.123Z');
        const written: string[] = [];
        createLogger({ service, level: 'info', now: () => time, destination: { write: (line: string) => void written.push(line) } }).fatal(
          { event: 'config_refused', problems: error.problems },
          error.message,
        );
        expect(written).toEqual([`${configRefusedLine(service, error, new Date(time))}\n`]);
      }),
      { numRuns: 300 },
    );
  });
});
