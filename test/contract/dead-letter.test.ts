/** event-dead-letter: the Triggers' dead-letter sink records undeliverable events for the SIEM. */
import { eventually, metricValue, rawRequest } from '../support/http.js';
import { runToExit, startFunction, type RunningFunction } from '../support/processes.js';

describe('event-dead-letter', () => {
  let fn: RunningFunction;

  beforeAll(async () => {
    fn = await startFunction({ host: 'lean', target: 'event-dead-letter', env: {} });
  });
  afterAll(() => fn?.stop());

  it('exports every dead-letter series at 0 before the first one, so increase() sees the first', async () => {
    const text = (await rawRequest(fn.url, '/metrics')).body.toString();
    for (const type of ['dev.knative.sources.ping', 'com.thalesgroup.ciphertrust.key.rotated', 'com.thalesgroup.ciphertrust.key.destroyed', 'other']) {
      expect(text).toContain(`jwks_events_dead_lettered_total{type="${type}"} 0`);
    }
  });

  it('records a dead-lettered event as an audit record with the reason Knative gave, and answers 202', async () => {
    const response = await rawRequest(fn.url, '/', {
      method: 'POST',
      headers: {
        'ce-specversion': '1.0',
        'ce-id': 'rot-42',
        'ce-source': '/rotation-pipeline',
        'ce-type': 'com.thalesgroup.ciphertrust.key.rotated',
        'ce-knativeerrorcode': '502',
        'ce-knativeerrordest': 'http://key-rotated.jwks.svc.cluster.local',
      },
    });
    expect(response.status).toBe(202);
    await eventually(() => Promise.resolve(fn.output().includes('"event":"event_dead_lettered"')));
    const record = JSON.parse(fn.output().split('\n').find((line) => line.includes('event_dead_lettered'))!) as Record<string, unknown>;
    expect(record).toMatchObject({ audit: true, eventId: 'rot-42', errorCode: '502', errorDestination: 'http://key-rotated.jwks.svc.cluster.local' });
    const text = (await rawRequest(fn.url, '/metrics')).body.toString();
    expect(metricValue(text, 'jwks_events_dead_lettered_total{type="com.thalesgroup.ciphertrust.key.rotated"}')).toBe(1);
  });

  it('answers 400 to what is not a CloudEvent, 405 to GET on /, and its probes', async () => {
    expect((await rawRequest(fn.url, '/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400);
    expect((await rawRequest(fn.url, '/')).status).toBe(405);
    expect((await rawRequest(fn.url, '/readyz')).status).toBe(200);
  });

  it('refuses to start with a CipherTrust variable', async () => {
    const { code, output } = await runToExit({ FUNCTION_TARGET: 'event-dead-letter', CIPHERTRUST_PASSWORD: 'x' });
    expect(code).toBe(78);
    expect(output).toContain('CIPHERTRUST_PASSWORD');
    expect(output).not.toContain('"x"');
  });
});
