import { DeferredLogger, MAX_HELD_RECORDS } from '../../shared/observability/deferred-logger.js';
import { createLogger } from '../../shared/observability/logger.js';
import { eventually } from '../support/http.js';

/** A deferred logger over a real pino logger whose lines are kept; `clock` is the time records are taken at. */
function deferred(level = 'info'): { logger: DeferredLogger; lines: () => Record<string, unknown>[]; loads: () => number; setClock: (ms: number) => void } {
  const written: string[] = [];
  let loads = 0;
  let clock = Date.parse('2026-11-24T10:00:00.000Z');
  const logger = new DeferredLogger(
    (now) => {
      loads++;
      return Promise.resolve(createLogger({ service: 'jwks-get', level, now, destination: { write: (line: string) => void written.push(line) } }));
    },
    () => clock,
  );
  return {
    logger,
    lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>),
    loads: () => loads,
    setClock: (ms) => (clock = ms),
  };
}

describe('DeferredLogger', () => {
  it('writes nothing before the load, then every held record in order, each with the time it was logged', async () => {
    const { logger, lines, setClock } = deferred();
    setClock(Date.parse('2026-11-24T10:00:00.010Z'));
    logger.info({ event: 'starting', store: 'file:///data' }, 'jwks-get starting');
    setClock(Date.parse('2026-11-24T10:00:00.025Z'));
    logger.warn({ event: 'store_unavailable', reason: 'missing' }, 'jwks.json is not in the store');
    setClock(Date.parse('2026-11-24T10:00:00.040Z'));
    logger.error({ event: 'request_failed', err: new Error('boom') }, 'request failed');
    expect(lines()).toEqual([]);
    expect(logger.loaded).toBe(false);

    setClock(Date.parse('2026-11-24T10:00:01.000Z'));
    await logger.load();
    expect(logger.loaded).toBe(true);
    expect(lines().map(({ level, time, event, msg }) => ({ level, time, event, msg }))).toEqual([
      { level: 'info', time: '2026-11-24T10:00:00.010Z', event: 'starting', msg: 'jwks-get starting' },
      { level: 'warn', time: '2026-11-24T10:00:00.025Z', event: 'store_unavailable', msg: 'jwks.json is not in the store' },
      { level: 'error', time: '2026-11-24T10:00:00.040Z', event: 'request_failed', msg: 'request failed' },
    ]);
    // pino's serializers and base fields apply to held records as to any other.
    expect(lines()[2]).toMatchObject({ service: 'jwks-get', err: { type: 'Error', message: 'boom' } });
  });

  it('after the load, writes each record at once, with the time of the moment', async () => {
    const { logger, lines, setClock } = deferred();
    await logger.load();
    setClock(Date.parse('2026-11-24T10:00:05.500Z'));
    logger.info({ event: 'key_set_loaded', keys: 4 }, 'serving a new key set');
    expect(lines()).toEqual([expect.objectContaining({ event: 'key_set_loaded', time: '2026-11-24T10:00:05.500Z' })]);
  });

  it("leaves levels to the real logger: held debug records are dropped at level info, kept at debug", async () => {
    for (const level of ['info', 'debug']) {
      const { logger, lines } = deferred(level);
      logger.debug({ event: 'detail' }, 'detail');
      logger.info({ event: 'summary' }, 'summary');
      await logger.load();
      expect(lines().map((line) => line.event)).toEqual(level === 'debug' ? ['detail', 'summary'] : ['summary']);
    }
  });

  it('loads once, however many times it is asked, and writes each held record once', async () => {
    const { logger, lines, loads } = deferred();
    logger.info({ event: 'starting' }, 'starting');
    await Promise.all([logger.load(), logger.load(), logger.load()]);
    await logger.load();
    expect(loads()).toBe(1);
    expect(lines().map((line) => line.event)).toEqual(['starting']);
  });

  it('redacts held records as pino redacts any record', async () => {
    const { logger, lines } = deferred();
    logger.error({ event: 'odd', jwk: { kty: 'RSA', d: 'private-exponent-value' }, token: 'bearer-token-value' }, 'odd');
    await logger.load();
    const text = JSON.stringify(lines());
    expect(text).not.toContain('private-exponent-value');
    expect(text).not.toContain('bearer-token-value');
  });

  it(`holds at most ${MAX_HELD_RECORDS} records and says how many it dropped`, async () => {
    const { logger, lines } = deferred();
    for (let index = 0; index < MAX_HELD_RECORDS + 5; index++) logger.info({ event: 'record', index }, 'record');
    await logger.load();
    const written = lines();
    expect(written.filter((line) => line.event === 'record').map((line) => line.index)).toEqual([...Array(MAX_HELD_RECORDS).keys()]);
    expect(written.at(-1)).toMatchObject({ level: 'warn', event: 'log_records_dropped', dropped: 5 });
  });

  it('loadWithin loads by itself once the delay is over', async () => {
    const { logger, lines } = deferred();
    logger.info({ event: 'starting' }, 'starting');
    logger.loadWithin(20);
    expect(logger.loaded).toBe(false);
    await eventually(() => Promise.resolve(logger.loaded), 2_000);
    expect(lines().map((line) => line.event)).toEqual(['starting']);
  });
});
