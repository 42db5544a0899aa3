import { CloudEvent, HTTP } from 'cloudevents';
import { parseCloudEvents } from '../../shared/events/rotation-events.js';

function binary(type: string, data?: unknown) {
  const message = HTTP.binary(new CloudEvent({ id: 'evt-1', source: '/test', type, ...(data !== undefined && { data }) }));
  return { headers: message.headers, body: Buffer.from(typeof message.body === 'string' ? message.body : '') };
}

describe('parseCloudEvents', () => {
  it('reads a binary-mode rotation event', () => {
    const { headers, body } = binary('com.thalesgroup.ciphertrust.key.rotated', { id: 'abc' });
    expect(parseCloudEvents(headers, body)).toEqual({
      ok: true,
      events: [{ id: 'evt-1', type: 'com.thalesgroup.ciphertrust.key.rotated', source: '/test', kind: 'rotation' }],
    });
  });

  it('reads a PingSource tick with no body and no Content-Type (the functions-framework 5.0.5 trap)', () => {
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'tick-1', 'ce-type': 'dev.knative.sources.ping', 'ce-source': '/apis/v1/namespaces/jwks/pingsources/hourly' };
    const parsed = parseCloudEvents(headers, Buffer.alloc(0));
    expect(parsed.ok && parsed.events[0]?.kind).toBe('ping');
  });

  it.each([
    ['the jwkscheck extension', { 'ce-source': '/apis/v1/namespaces/jwks/pingsources/renamed', 'ce-jwkscheck': 'changes' }, 'change-check'],
    ['the jwks-change-check PingSource', { 'ce-source': '/apis/v1/namespaces/other/pingsources/jwks-change-check' }, 'change-check'],
    ['another extension value', { 'ce-source': '/apis/v1/namespaces/jwks/pingsources/jwks-hourly', 'ce-jwkscheck': 'everything' }, 'ping'],
    ['the hourly PingSource', { 'ce-source': '/apis/v1/namespaces/jwks/pingsources/jwks-hourly' }, 'ping'],
    ['a name that only ends like it', { 'ce-source': '/apis/v1/namespaces/jwks/pingsources/not-jwks-change-check' }, 'ping'],
  ])('tells a change-check tick from the hourly ping by %s', (_what, extra, kind) => {
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'tick-2', 'ce-type': 'dev.knative.sources.ping', 'content-type': 'application/json', ...extra };
    const parsed = parseCloudEvents(headers, Buffer.from('{"reason":"change check"}'));
    expect(parsed.ok && parsed.events[0]?.kind).toBe(kind);
  });

  it('never takes a rotation type for a change check, whatever its extension', () => {
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'r', 'ce-type': 'com.thalesgroup.ciphertrust.key.rotated', 'ce-source': '/x/pingsources/jwks-change-check', 'ce-jwkscheck': 'changes' };
    expect(parseCloudEvents(headers, Buffer.alloc(0))).toMatchObject({ ok: true, events: [{ kind: 'rotation' }] });
  });

  it('reads a structured-mode event and a batch', () => {
    const structured = HTTP.structured(new CloudEvent({ id: 'evt-2', source: '/s', type: 'com.thalesgroup.ciphertrust.key.destroyed' }));
    const parsed = parseCloudEvents(structured.headers, Buffer.from(structured.body as string));
    expect(parsed.ok && parsed.events.map((event) => event.kind)).toEqual(['rotation']);
    const batch = JSON.stringify([
      { specversion: '1.0', id: 'a', source: '/s', type: 'com.thalesgroup.ciphertrust.key.created' },
      { specversion: '1.0', id: 'b', source: '/s', type: 'com.example.other' },
    ]);
    const parsedBatch = parseCloudEvents({ 'content-type': 'application/cloudevents-batch+json' }, Buffer.from(batch));
    expect(parsedBatch.ok && parsedBatch.events.map((event) => event.kind)).toEqual(['rotation', 'unknown']);
  });

  it('classifies every documented rotation type, and anything else as unknown', () => {
    for (const suffix of ['rotated', 'created', 'state-changed', 'destroyed']) {
      const { headers, body } = binary(`com.thalesgroup.ciphertrust.key.${suffix}`);
      expect(parseCloudEvents(headers, body)).toMatchObject({ ok: true, events: [{ kind: 'rotation' }] });
    }
    const { headers, body } = binary('com.thalesgroup.ciphertrust.key.exported');
    expect(parseCloudEvents(headers, body)).toMatchObject({ ok: true, events: [{ kind: 'unknown' }] });
  });

  it.each([
    ['plain JSON', { 'content-type': 'application/json' }, '{"hello":1}', /not a CloudEvent/],
    ['no source header', { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-type': 't' }, '', /ce-source/],
    ['an empty id header', { 'ce-specversion': '1.0', 'ce-id': '', 'ce-type': 't', 'ce-source': '/s' }, '', /ce-id/],
    ['another spec version', { 'ce-specversion': '0.9', 'ce-id': '1', 'ce-type': 't', 'ce-source': '/s' }, '', /specversion/],
    ['structured without id', { 'content-type': 'application/cloudevents+json' }, '{"specversion":"1.0","type":"t","source":"/s"}', /missing id/],
    ['structured garbage', { 'content-type': 'application/cloudevents+json' }, '{nope', /not valid JSON/],
    ['an empty batch', { 'content-type': 'application/cloudevents-batch+json' }, '[]', /empty CloudEvents batch/],
    ['a batch with a bad member', { 'content-type': 'application/cloudevents-batch+json' }, '[{"specversion":"1.0","id":"a","type":"t"}]', /missing source/],
    ['binary with malformed JSON data', { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-type': 't', 'ce-source': '/s', 'content-type': 'application/json' }, '{bad', /not valid JSON/],
  ])('refuses %s with a reason', (_case, headers, body, reason) => {
    const parsed = parseCloudEvents(headers, Buffer.from(body));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toMatch(reason);
  });
});
