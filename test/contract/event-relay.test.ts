/** event-relay: rotation announcements from outside the cluster, checked and forwarded to the Broker. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP } from 'cloudevents';
import { eventually, rawRequest } from '../support/http.js';
import { runToExit, startFunction, type RunningFunction } from '../support/processes.js';

const SECRET = 'relay-secret-of-at-least-32-characters!';
const ROTATED = 'com.thalesgroup.ciphertrust.key.rotated';

/** Stands in for the Broker ingress: records what it receives, answers `status`. */
async function startBroker(): Promise<{ url: string; received: { headers: IncomingHttpHeaders; body: string }[]; status: number; server: Server }> {
  const broker = { url: '', received: [] as { headers: IncomingHttpHeaders; body: string }[], status: 202, server: undefined as unknown as Server };
  broker.server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      broker.received.push({ headers: req.headers, body });
      res.writeHead(broker.status).end();
    });
  });
  await new Promise<void>((resolve) => broker.server.listen(0, '127.0.0.1', resolve));
  broker.url = `http://127.0.0.1:${(broker.server.address() as AddressInfo).port}/jwks/jwks`;
  return broker;
}

function event(type: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'ce-specversion': '1.0', 'ce-id': `evt-${Math.random()}`, 'ce-source': '/cm-audit-relay', 'ce-type': type, 'content-type': 'application/json', ...extra };
}

describe('event-relay', () => {
  let broker: Awaited<ReturnType<typeof startBroker>>;
  let relay: RunningFunction;

  beforeAll(async () => {
    broker = await startBroker();
    relay = await startFunction({ host: 'lean', target: 'event-relay', env: { K_SINK: broker.url, EVENT_RELAY_SHARED_SECRET: SECRET } });
  });
  afterAll(async () => {
    await relay?.stop();
    await new Promise((resolve) => broker?.server.close(resolve));
  });

  it('forwards a rotation event with the secret to the Broker, attributes only, and audits it', async () => {
    const headers = event(ROTATED, { authorization: `Bearer ${SECRET}` });
    const response = await rawRequest(relay.url, '/', { method: 'POST', headers, body: '{"id":"a-hint-only"}' });
    expect(response.status).toBe(202);
    const forwarded = broker.received.pop()!;
    const received = HTTP.toEvent({ headers: forwarded.headers, body: forwarded.body === '' ? undefined : forwarded.body });
    expect(received).toMatchObject({ id: headers['ce-id'], type: ROTATED, source: '/cm-audit-relay' });
    expect(forwarded.body).not.toContain('a-hint-only');
    expect(forwarded.headers.authorization).toBeUndefined();
    await eventually(() => Promise.resolve(relay.output().includes('"event":"event_relayed"')));
    expect(relay.output()).not.toContain(SECRET);
  });

  it('refuses events without the secret, and types other than rotations', async () => {
    const before = broker.received.length;
    expect((await rawRequest(relay.url, '/', { method: 'POST', headers: event(ROTATED) })).status).toBe(401);
    expect((await rawRequest(relay.url, '/', { method: 'POST', headers: event(ROTATED, { authorization: 'Bearer wrong' }) })).status).toBe(401);
    const ping = await rawRequest(relay.url, '/', { method: 'POST', headers: event('dev.knative.sources.ping', { authorization: `Bearer ${SECRET}` }) });
    expect(ping.status).toBe(400);
    expect(broker.received.length).toBe(before);
  });

  it('answers 502 when the Broker does not take the event, so the producer retries', async () => {
    broker.status = 503;
    try {
      const response = await rawRequest(relay.url, '/', { method: 'POST', headers: event(ROTATED, { authorization: `Bearer ${SECRET}` }) });
      expect(response.status).toBe(502);
    } finally {
      broker.status = 202;
    }
  });

  it('answers 502 when the Broker does not answer within EVENT_RELAY_TIMEOUT_MS', async () => {
    // A Broker that accepts the connection and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const sink = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/jwks/jwks`;
    const slow = await startFunction({ host: 'lean', target: 'event-relay', env: { K_SINK: sink, EVENT_RELAY_SHARED_SECRET: SECRET, EVENT_RELAY_TIMEOUT_MS: '300' } });
    try {
      const started = Date.now();
      const response = await rawRequest(slow.url, '/', { method: 'POST', headers: event(ROTATED, { authorization: `Bearer ${SECRET}` }) });
      expect(response.status).toBe(502);
      expect(JSON.parse(response.body.toString())).toMatchObject({ error: 'relay_failed' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await slow.stop();
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses to start without a sink or with a short secret', async () => {
    const { code, output } = await runToExit({ FUNCTION_TARGET: 'event-relay', EVENT_RELAY_SHARED_SECRET: 'short' });
    expect(code).toBe(78);
    expect(output).toContain('K_SINK');
    expect(output).toContain('EVENT_RELAY_SHARED_SECRET');
    expect(output).not.toContain('"short"');
  });
});
