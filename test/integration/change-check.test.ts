/**
 * What posts no event reaches the store at the next change-check tick, through the real
 * key-rotated process: CM's scheduled rotations (the emulator's scheduler), an offset rotation's
 * Pre-Active version, a Pre-Active key's activation date and the end of a Deactivated key's
 * retention window (dates passing with no CM update: the emulator does not move updatedAt). No
 * hourly ping is sent; an idle tick costs one CM request.
 */
import { createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { metricValue, rawRequest } from '../support/http.js';
import { startFunction } from '../support/processes.js';
import { auditRecordsIn, changeCheckTick, startPublisherStack, waitForFirstCycle, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const ENCRYPT = 4 | 8;
const PUBLISH = { jwks: 'publish' };
const RETAIN_SECONDS = 5;

interface TickAnswer {
  readonly status: number;
  readonly body: { check?: string; reason?: string; outcome?: string; added?: number; removed?: number; keys?: number };
}

describe('change check: scheduled rotations and date-driven changes reach the store with no event', () => {
  let stack: PublisherStack;
  let kids: string[] = [];

  beforeAll(async () => {
    stack = await startPublisherStack('file', {
      env: { JWKS_RETAIN_DEACTIVATED: `${RETAIN_SECONDS}s` },
      emulator: { schedulerTickMs: 0, dateTransitionsMoveUpdatedAt: false },
    });
  });
  afterAll(() => stack?.close());

  const audits = (): { reason: { kinds: string[] } }[] => auditRecordsIn(stack.keyRotated.output());

  async function tick(): Promise<TickAnswer> {
    return (await stack.changeCheck());
  }

  async function kidOf(id: string): Promise<string> {
    return calculateJwkThumbprint(createPublicKey(stack.emulator.keys.get(id)!.publickey!).export({ format: 'jwk' }));
  }

  function versions(name: string): { id: string; version: number; state: string }[] {
    return stack.emulator.keys
      .list()
      .filter((key) => key.name === name)
      .sort((a, b) => a.version - b.version);
  }

  it('a key created in CM is published at the next tick', async () => {
    stack.emulator.keys.create({ name: 'signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    stack.emulator.keys.create({ name: 'gateway', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    expect(await tick()).toEqual({ status: 200, body: { check: 'changed', reason: 'changes', outcome: 'published', added: 2, removed: 0, keys: 2 } });
    expect(audits().at(-1)!.reason.kinds).toEqual(['change-check']);
    kids = await stack.publishedKids();
    expect(kids).toHaveLength(2);
  });

  it('an idle tick makes exactly one CM request, publishes nothing and logs no info line', async () => {
    const outputBefore = stack.keyRotated.output().length;
    stack.emulator.clearRequests();
    expect(await tick()).toEqual({ status: 200, body: { check: 'unchanged' } });
    expect(stack.emulator.requests.map((request) => [request.method, request.path, request.status])).toEqual([['POST', '/api/v1/vault/query-keys', 200]]);
    const lines = stack.keyRotated
      .output()
      .slice(outputBefore)
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { level: string; event?: string });
    expect(lines.filter((line) => line.level !== 'debug')).toEqual([]);
    const metrics = (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString();
    expect(metricValue(metrics, 'jwks_publisher_change_checks_total{outcome="unchanged"}')).toBeGreaterThanOrEqual(1);
  });

  it('a scheduled rotation (the scheduler, no event, no ping) reaches the store at the next tick', async () => {
    const job = stack.emulator.scheduler.create({ name: 'rotate-signing', keyQuery: { names: ['signing'] }, everySeconds: 3600 });
    const [rotated] = stack.emulator.scheduler.runNow(job.id);
    const newKid = await kidOf(rotated!.id);
    expect(await stack.publishedKids()).not.toContain(newKid);
    expect(await tick()).toMatchObject({ status: 200, body: { check: 'changed', outcome: 'published', added: 1, removed: 0 } });
    expect(await stack.publishedKids()).toContain(newKid);
    expect(await tick()).toEqual({ status: 200, body: { check: 'unchanged' } });
  });

  it('an offset rotation publishes its Pre-Active version ahead of its activation', async () => {
    const job = stack.emulator.scheduler.create({ name: 'rotate-gateway', keyQuery: { names: ['gateway'] }, everySeconds: 3600, offsetSeconds: 3600 });
    const [ahead] = stack.emulator.scheduler.runNow(job.id);
    expect(ahead!.state).toBe('Pre-Active');
    expect(await tick()).toMatchObject({ body: { check: 'changed', outcome: 'published', added: 1 } });
    expect(await stack.publishedKids()).toContain(await kidOf(ahead!.id));
  });

  it("a Pre-Active encryption key is published at the first tick after its activationDate, with no CM update", async () => {
    const activation = new Date(Date.now() + 3000);
    const key = stack.emulator.keys.create({ name: 'encryption', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT, labels: PUBLISH, activationDate: activation.toISOString() });
    const kid = await kidOf(key.id);
    // Its creation is a change; Pre-Active encryption keys are not published.
    expect(await tick()).toMatchObject({ body: { check: 'changed', added: 0 } });
    expect(await tick()).toEqual({ status: 200, body: { check: 'unchanged' } });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, activation.getTime() - Date.now()) + 300));
    stack.emulator.clearRequests();
    expect(await tick()).toMatchObject({ body: { check: 'due', reason: 'date', outcome: 'published', added: 1 } });
    // No query: the date alone ran the cycle (CM's updatedAt did not move).
    expect(stack.emulator.requests.filter((request) => request.endpoint === 'query')).toEqual([]);
    expect(stack.emulator.keys.get(key.id)).toMatchObject({ state: 'Active', updatedAt: key.updatedAt });
    expect(await stack.publishedKids()).toContain(kid);
  });

  it("a Deactivated signing key leaves at the first tick after its retention window ends, with no CM update", async () => {
    const [v0] = versions('signing');
    const kid = await kidOf(v0!.id);
    const revoked = stack.emulator.keys.revoke(v0!.id, 'Superseded');
    expect(await tick()).toMatchObject({ body: { check: 'changed', removed: 0 } });
    expect(await stack.publishedKids()).toContain(kid);
    const end = Date.parse(revoked.deactivationDate!) + RETAIN_SECONDS * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, end - Date.now()) + 300));
    expect(await tick()).toMatchObject({ body: { check: 'due', reason: 'date', outcome: 'published', added: 0, removed: 1 } });
    expect(await stack.publishedKids()).not.toContain(kid);
    expect(stack.emulator.keys.get(v0!.id)!.updatedAt).toBe(revoked.updatedAt);
  });

  it('a check that cannot ask CM answers 200 with check failed (the next tick is the retry), and publishes nothing', async () => {
    // CIPHERTRUST_MAX_ATTEMPTS is 3 in the test stack: every attempt fails.
    stack.emulator.faults.failNext({ endpoint: 'query', status: 503, count: 3 });
    const before = audits().length;
    const answer = await tick();
    expect(answer).toMatchObject({ status: 200, body: { check: 'failed', message: expect.stringMatching(/503/) as unknown } });
    expect(audits()).toHaveLength(before);
    expect(stack.keyRotated.output()).toMatch(/"level":"warn"[^\n]*"event":"change_check"[^\n]*"outcome":"failed"/);
    expect(await tick()).toEqual({ status: 200, body: { check: 'unchanged' } });
  });

  it('a batch holding a change-check tick and a rotation event runs one full publication', async () => {
    const batch = JSON.stringify([
      { specversion: '1.0', id: 'tick', source: '/apis/v1/namespaces/jwks/pingsources/jwks-change-check', type: 'dev.knative.sources.ping', jwkscheck: 'changes' },
      { specversion: '1.0', id: 'rot', source: '/pipeline', type: 'com.thalesgroup.ciphertrust.key.rotated' },
    ]);
    stack.emulator.clearRequests();
    const response = await rawRequest(stack.keyRotated.url, '/', { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: batch });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString())).toMatchObject({ outcome: 'unchanged' });
    expect(stack.emulator.requests.some((request) => request.endpoint === 'list')).toBe(true);
  });

  it('the hourly ping is still a full publication', async () => {
    stack.emulator.clearRequests();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
    expect(stack.emulator.requests.some((request) => request.endpoint === 'list')).toBe(true);
  });
});

describe('change check after a restart', () => {
  let stack: PublisherStack;
  beforeAll(async () => {
    stack = await startPublisherStack('file', { emulator: { schedulerTickMs: 0 } });
  });
  afterAll(() => stack?.close());

  it('a key-rotated whose start-up publication failed runs a full publication at its first tick, then checks cheaply', async () => {
    stack.emulator.keys.create({ name: 'signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    // A second key-rotated starts while CM is down: its start-up publication fails, so it knows nothing.
    await stack.emulator.down();
    const restarted = await startFunction({ host: 'lean', target: 'key-rotated', env: stack.env });
    try {
      await waitForFirstCycle(restarted.url);
      await stack.emulator.up();
      const send = async (): Promise<Record<string, unknown>> => JSON.parse((await rawRequest(restarted.url, '/', { method: 'POST', ...changeCheckTick() })).body.toString()) as Record<string, unknown>;
      expect(await send()).toMatchObject({ check: 'due', reason: 'no_baseline', outcome: 'published', added: 1 });
      stack.emulator.clearRequests();
      expect(await send()).toEqual({ check: 'unchanged' });
      expect(stack.emulator.requests.map((request) => request.endpoint)).toEqual(['query']);
    } finally {
      await restarted.stop();
    }
  });
});
