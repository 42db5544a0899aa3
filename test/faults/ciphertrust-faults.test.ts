/**
 * CipherTrust Manager faults, end to end: the CM emulator misbehaves in each way CM (or a proxy in
 * front of it) can; key-rotated, in its own process, reads it and writes a real file store;
 * jwks-get, in its own process, serves from that store. For every fault:
 *   (a) /jwks keeps answering 200 with the last good set throughout;
 *   (b) the store's files stay byte-identical, unless a consistent new set was read (and then they
 *       hold exactly CM's set);
 *   (c) key-rotated's /metrics and its audit record say what happened;
 *   (d) once the fault is gone, the next event or ping publishes the right set.
 * Every test first adds a key to CM, so a cycle that read CM wrongly, or wrote while it should
 * not, shows in the files. Timeouts and retries are short (CIPHERTRUST_* below).
 */
import { createPublicKey } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import type { CmKeyResource, CreateKeyInput } from '../../emulator/index.js';
import { eventually, metricValue, rawRequest, type RawResponse } from '../support/http.js';
import { credentialValues, expectNoSecretsInLogs } from '../support/log-secrets.js';
import { startFunction, type RunningFunction } from '../support/processes.js';
import { PUBLISHER_PASSWORD, auditRecordsIn, startPublisherStack, type EventAnswer, type PublisherStack } from '../support/publisher-stack.js';

const SIGN = 1 | 2;
const ENCRYPT = 4 | 8;
const PUBLISH = { jwks: 'publish' };
const ROTATED = 'com.thalesgroup.ciphertrust.key.rotated';
const PAGE_SIZE = 3;
const TIMEOUT_MS = 1500;
/** The transport's cap on one answer (shared/ciphertrust/transport.ts). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** The emulator's clock runs ahead of the real one by this much; a test moves it to expire tokens. */
let clockOffsetMs = 0;

interface AuditRecord {
  outcome: string;
  failure?: string;
  message?: string;
  keys: number;
  keptUnreadable?: string[];
  reason: { kinds: string[] };
  added: { kid: string; cmKey?: { id: string } }[];
  removed: { kid: string }[];
}

/** Every object in the store directory, by name: what "byte-identical files" compares. */
type StoreSnapshot = Record<string, string>;

describe('CipherTrust Manager faults, end to end (key-rotated writing a file store, jwks-get serving it)', () => {
  let stack: PublisherStack;
  let jwksGet: RunningFunction;
  let counter = 0;

  beforeAll(async () => {
    stack = await startPublisherStack('file', {
      emulator: { now: () => new Date(Date.now() + clockOffsetMs) },
      env: {
        // Several pages per listing, so faults can strike between pages.
        CIPHERTRUST_PAGE_SIZE: String(PAGE_SIZE),
        CIPHERTRUST_TIMEOUT_MS: String(TIMEOUT_MS),
        CIPHERTRUST_MAX_ATTEMPTS: '3',
        CIPHERTRUST_RETRY_BUDGET_MS: '2500',
      },
    });
    for (let index = 0; index < 4; index++) addKey();
    expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: 4 } });
    jwksGet = await startFunction({ host: 'lean', target: 'jwks-get', env: { ...stack.backend.env, JWKS_REVALIDATE_MS: '50' }, waitForReady: true });
  });
  afterAll(async () => {
    await jwksGet?.stop();
    await stack?.close();
  });
  afterEach(() => {
    stack.emulator.faults.clear();
  });

  /** A new signing key in CM, labelled for publication. */
  function addKey(input: Partial<CreateKeyInput> = {}): CmKeyResource {
    counter++;
    return stack.emulator.keys.create({ name: `fault-key-${counter}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH, ...input });
  }

  async function kidOf(id: string): Promise<string> {
    const pem = stack.emulator.keys.get(id)?.publickey;
    if (pem === undefined) throw new Error(`no public key for ${id}`);
    return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }));
  }

  /** The kids CM's content calls for: labelled, Active key pairs (every key here signs), once each. */
  async function expectedKids(): Promise<string[]> {
    const keys = stack.emulator.keys.list().filter((key) => key.labels.jwks === 'publish' && key.state === 'Active' && key.objectType === 'Private Key');
    return [...new Set(await Promise.all(keys.map((key) => kidOf(key.id))))].sort();
  }

  async function snapshot(): Promise<StoreSnapshot> {
    const directory = stack.backend.directory!;
    const names = (await readdir(directory)).filter((name) => name.endsWith('.json')).sort();
    return Object.fromEntries(await Promise.all(names.map(async (name) => [name, (await readFile(join(directory, name))).toString('utf8')] as const)));
  }

  async function metrics(): Promise<string> {
    return (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString();
  }

  /** How much each series moved between two scrapes. */
  function delta(before: string, after: string, series: string): number {
    return metricValue(after, series) - metricValue(before, series);
  }

  /** Audit records key-rotated wrote after `from` (an offset into its output). */
  function auditSince(from: number): AuditRecord[] {
    return auditRecordsIn<AuditRecord>(stack.keyRotated.output().slice(from));
  }

  function logSince(from: number): string {
    return stack.keyRotated.output().slice(from);
  }

  async function servedKids(): Promise<string[]> {
    const response = await rawRequest(jwksGet.url, '/jwks');
    return (JSON.parse(response.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();
  }

  /**
   * Asks /jwks every 20 ms until stopped: check (a) is that every answer is 200 and carries one of
   * the sets the store held (never a 5xx, an empty or a partial set).
   */
  function probeServing(): { stop(): Promise<RawResponse[]> } {
    const answers: RawResponse[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        answers.push(await rawRequest(jwksGet.url, '/jwks'));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return answers;
      },
    };
  }

  function expectServedOnly(answers: readonly RawResponse[], sets: readonly (string | undefined)[]): void {
    expect(answers.length).toBeGreaterThan(0);
    const allowed = new Set(sets);
    const unexpected = answers.filter((answer) => answer.status !== 200 || !allowed.has(answer.body.toString()));
    expect(unexpected.map((answer) => `${answer.status} ${answer.body.toString().slice(0, 120)}`)).toEqual([]);
  }

  interface FaultRun {
    readonly answer: EventAnswer;
    readonly before: StoreSnapshot;
    readonly after: StoreSnapshot;
    readonly metricsBefore: string;
    readonly metricsAfter: string;
    readonly audit: AuditRecord;
    readonly log: string;
  }

  /**
   * One cycle under the fault (a ping), with serving probed. Then the fault is cleared (`heal`,
   * plus faults.clear()) and the next event or ping must publish exactly CM's set, and jwks-get
   * serve it; serving is probed through the recovery too.
   */
  async function underFault(options: { arm: () => void | Promise<void>; heal?: () => void | Promise<void>; recoverWith?: 'ping' | 'rotation' }, check: (run: FaultRun) => void | Promise<void>): Promise<void> {
    const before = await snapshot();
    const metricsBefore = await metrics();
    const from = stack.keyRotated.output().length;
    const probe = probeServing();
    let answers: RawResponse[] = [];
    try {
      await options.arm();
      const answer = await stack.ping();
      const after = await snapshot();
      const metricsAfter = await metrics();
      const audit = auditSince(from).pop()!;
      expect(audit).toBeDefined();
      await check({ answer, before, after, metricsBefore, metricsAfter, audit, log: logSince(from) });

      stack.emulator.faults.clear();
      await options.heal?.();
      const recovery = options.recoverWith === 'rotation' ? await stack.sendEvent(ROTATED) : await stack.ping();
      expect(recovery.status).toBe(200);
      const expected = await expectedKids();
      expect(await stack.publishedKids()).toEqual(expected);
      await eventually(async () => JSON.stringify(await servedKids()) === JSON.stringify(expected), 5000);
      answers = await probe.stop();
      expectServedOnly(answers, [before['jwks.json'], after['jwks.json'], (await snapshot())['jwks.json']]);
    } finally {
      if (answers.length === 0) await probe.stop();
    }
  }

  /** A failed cycle: 502, nothing written, a failed audit record naming CM. */
  function expectFailedUntouched(run: FaultRun, message: RegExp): void {
    expect(run.answer.status).toBe(502);
    expect(run.answer.body).toMatchObject({ error: 'ciphertrust_failed' });
    expect(String(run.answer.body.message)).toMatch(message);
    expect(run.after).toEqual(run.before);
    expect(run.audit).toMatchObject({ outcome: 'failed', failure: 'ciphertrust', added: [], removed: [] });
    expect(run.audit.message).toMatch(message);
    expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_publisher_publications_total{outcome="failed"}')).toBe(1);
  }

  it('CM down (connection refused): nothing written, serving unaffected, the next event publishes', async () => {
    addKey();
    await underFault(
      {
        arm: () => stack.emulator.down(),
        heal: () => stack.emulator.up(),
        recoverWith: 'rotation',
      },
      (run) => {
        expectFailedUntouched(run, /cannot reach CipherTrust Manager: ECONNREFUSED/);
        // Retried within the budget before giving up: every attempt is counted.
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="network_error"}')).toBe(3);
        expect(run.audit.message).toContain('gave up after 3 attempts');
      },
    );
  });

  it('CM slower than the timeout: each attempt ends at the timeout, nothing written, the next ping publishes', async () => {
    addKey();
    await underFault({ arm: () => stack.emulator.faults.setLatency(TIMEOUT_MS + 500) }, (run) => {
      expectFailedUntouched(run, new RegExp(`no answer from CipherTrust Manager within ${TIMEOUT_MS} ms`));
      // The 2.5 s retry budget leaves room for one retry after a 1.5 s timeout, not two.
      expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="timeout"}')).toBe(2);
    });
  });

  it('5xx bursts: a short burst is retried away within the cycle, a long one or a 500 fails it untouched', async () => {
    // Short: one 503 on the listing and one 502 on the new key's GET, both retried; the cycle
    // reads a consistent set and publishes it.
    const added = addKey();
    await underFault(
      {
        arm: () => {
          stack.emulator.faults.failNext({ endpoint: 'list', status: 503, count: 1 });
          stack.emulator.faults.failNext({ endpoint: 'get', status: 502, count: 1 });
        },
      },
      async (run) => {
        expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, removed: 0 } });
        expect(JSON.parse(run.after['jwks.json']!)).toMatchObject({ keys: expect.arrayContaining([expect.objectContaining({ kid: await kidOf(added.id) })]) as unknown });
        expect(run.audit).toMatchObject({ outcome: 'published', added: [{ kid: await kidOf(added.id), cmKey: { id: added.id } }] });
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="503"}')).toBe(1);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_get",status="502"}')).toBe(1);
      },
    );

    // Long: more 504s than attempts.
    addKey();
    await underFault({ arm: () => stack.emulator.faults.failNext({ endpoint: 'list', status: 504, count: 50 }) }, (run) => {
      expectFailedUntouched(run, /CipherTrust Manager answered 504/);
      expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="504"}')).toBe(3);
    });

    // A 500 is not one of the statuses CM documents as retryable: the cycle fails at once.
    addKey();
    await underFault({ arm: () => stack.emulator.faults.failNext({ endpoint: 'list', status: 500, count: 50 }) }, (run) => {
      expectFailedUntouched(run, /status 500 \(NCERRInternalServerError/);
      expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="500"}')).toBe(1);
    });
  });

  it('token expired in the middle of paging (401 on page 2): one new login, the listing completes', async () => {
    const added = addKey();
    let remove = (): void => undefined;
    await underFault(
      {
        arm: () => {
          // CM's clock passes the token's expiry just as page 2 is asked for.
          remove = stack.emulator.faults.onRequest((request) => {
            if (request.endpoint === 'list' && request.query.skip === String(PAGE_SIZE)) {
              clockOffsetMs += 400_000;
              remove();
            }
          });
          stack.emulator.clearRequests();
        },
      },
      async (run) => {
        expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, removed: 0 } });
        expect(run.audit.added.map((change) => change.kid)).toEqual([await kidOf(added.id)]);
        const trail = stack.emulator.requests.filter((request) => request.endpoint !== 'get').map((request) => `${request.endpoint} ${request.query.skip ?? ''} ${request.status}`);
        expect(trail.slice(0, 4)).toEqual(['list 0 200', `list ${PAGE_SIZE} 401`, 'auth  200', `list ${PAGE_SIZE} 200`]);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="401"}')).toBe(1);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="auth_tokens",status="200"}')).toBe(1);
      },
    );

    // Tokens that expire again as soon as they are used: one re-login, then the cycle gives up.
    addKey();
    await underFault(
      {
        arm: () => {
          stack.emulator.faults.onRequest((request) => {
            if (request.endpoint === 'list' && request.query.skip === String(PAGE_SIZE)) clockOffsetMs += 400_000;
          });
        },
      },
      (run) => {
        expectFailedUntouched(run, /status 401 \(NCERRUnauthorizedAccess: Token is expired\)/);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="401"}')).toBe(2);
      },
    );
  });

  it('the set changing while it is paged (keys added and removed between pages): never a mix of two states', async () => {
    // Once: between page 1 and page 2 the oldest key leaves the selector and a new key appears,
    // so the total does not move but every later page shifts by one.
    addKey();
    let changes = 0;
    const churn = (): void => {
      const oldest = stack.emulator.keys.list().find((key) => key.labels.jwks === 'publish')!;
      stack.emulator.keys.patch(oldest.id, { labels: {} });
      addKey();
      changes++;
    };
    await underFault(
      {
        arm: () => {
          const remove = stack.emulator.faults.onRequest((request) => {
            if (request.endpoint === 'list' && request.query.skip === String(PAGE_SIZE)) {
              remove();
              churn();
            }
          });
        },
      },
      async (run) => {
        expect(changes).toBe(1);
        // A consistent new set was read: exactly CM's content after the change, in one cycle.
        expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'published', added: 2, removed: 1 } });
        expect((JSON.parse(run.after['jwks.json']!) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort()).toEqual(await expectedKids());
      },
    );

    // Every time page 2 is read: the listing never settles, and nothing is written.
    changes = 0;
    await underFault(
      {
        arm: () => {
          stack.emulator.faults.onRequest((request) => {
            if (request.endpoint === 'list' && request.query.skip === String(PAGE_SIZE)) churn();
          });
        },
      },
      (run) => {
        expect(changes).toBeGreaterThanOrEqual(2);
        expectFailedUntouched(run, /the key list kept changing while it was read/);
      },
    );
  });

  it('malformed JSON answers: a listing fails the cycle untouched; a key answered so is skipped, and kept if published', async () => {
    addKey();
    await underFault({ arm: () => stack.emulator.faults.malformNext({ endpoint: 'list', count: 50 }) }, (run) => {
      expectFailedUntouched(run, /the key list answer has no resources array or total/);
      // Not retried: a 2xx that cannot be read will not read better a second later.
      expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="200"}')).toBe(1);
    });

    // The GETs of a new key and of a published key (its label change makes it fetched again).
    const fresh = addKey();
    const published = stack.emulator.keys.list().find((key) => key.labels.jwks === 'publish' && key.id !== fresh.id)!;
    const publishedKid = await kidOf(published.id);
    await underFault(
      {
        arm: () => {
          stack.emulator.keys.patch(published.id, { labels: { ...PUBLISH, owner: 'gateway-team' } });
          stack.emulator.faults.malformNext({ endpoint: 'get', count: 2 });
        },
      },
      (run) => {
        expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'unchanged', added: 0, removed: 0 } });
        expect(run.after).toEqual(run.before);
        expect(run.audit).toMatchObject({ outcome: 'unchanged', keptUnreadable: [publishedKid] });
        // Each answer is counted as unreadable, and each key as having no public key this time.
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_publisher_keys_skipped_total{reason="malformed_resource"}')).toBe(2);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_publisher_keys_skipped_total{reason="no_public_key"}')).toBe(2);
        expect(metricValue(run.metricsAfter, 'jwks_publisher_keys_kept_unreadable')).toBe(1);
        expect(run.log).toContain(`"event":"key_kept_unreadable","kid":"${publishedKid}"`);
        expect(run.log).toContain(`"reason":"malformed_resource","cmKeyId":"${fresh.id}","detail":"not a JSON object"`);
      },
    );
    expect(metricValue(await metrics(), 'jwks_publisher_keys_kept_unreadable')).toBe(0);
  });

  it('truncated JSON answers (connection dropped mid-answer): retried, and failing untouched while they last', async () => {
    addKey();
    await underFault({ arm: () => stack.emulator.faults.truncateNext({ endpoint: 'list', count: 50 }) }, (run) => {
      expectFailedUntouched(run, /cannot reach CipherTrust Manager/);
      expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="network_error"}')).toBe(3);
    });

    // One truncated GET of the new key: retried, and the cycle publishes the right set.
    const added = addKey();
    await underFault({ arm: () => stack.emulator.faults.truncateNext({ endpoint: 'get', count: 1 }) }, async (run) => {
      expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'published', added: 1 } });
      expect(run.audit.added.map((change) => change.kid)).toEqual([await kidOf(added.id)]);
      expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_get",status="network_error"}')).toBe(1);
    });
  });

  it('malformed PEM: a new key is skipped, a published one kept as it is; nothing written', async () => {
    const fresh = addKey();
    const published = stack.emulator.keys.list().find((key) => key.labels.jwks === 'publish' && key.id !== fresh.id)!;
    const publishedKid = await kidOf(published.id);
    await underFault(
      {
        arm: () => {
          stack.emulator.faults.malformPublicKey(fresh.id);
          stack.emulator.faults.malformPublicKey(published.id);
          stack.emulator.keys.patch(published.id, { labels: { ...PUBLISH, owner: 'pem-test' } });
        },
      },
      (run) => {
        expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'unchanged', added: 0, removed: 0 } });
        expect(run.after).toEqual(run.before);
        expect(run.audit).toMatchObject({ outcome: 'unchanged', keptUnreadable: [publishedKid] });
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_publisher_keys_skipped_total{reason="malformed_public_key"}')).toBe(2);
        expect(metricValue(run.metricsAfter, 'jwks_publisher_keys_kept_unreadable')).toBe(1);
        expect(run.log).toContain(`"cmKey":{"id":"${fresh.id}"`);
      },
    );
  });

  it('duplicate kids (two CM keys holding one key pair): each kid published once; conflicting copies withheld', async () => {
    const published = stack.emulator.keys.list().find((key) => key.labels.jwks === 'publish')!;
    const fresh = addKey();
    const ambiguous = addKey();
    let conflicting: CmKeyResource | undefined;
    await underFault(
      {
        arm: () => {
          // The same pair imported again, as a published key's and a new key's twin (same use) ...
          addKey({ objectType: 'Private Key', publicKeyOf: published.id });
          addKey({ objectType: 'Private Key', publicKeyOf: fresh.id });
          // ... and a copy allowed only to encrypt: the kid's use is ambiguous.
          conflicting = addKey({ objectType: 'Private Key', publicKeyOf: ambiguous.id, usageMask: ENCRYPT });
        },
        heal: () => {
          stack.emulator.keys.patch(conflicting!.id, { labels: {} });
        },
      },
      async (run) => {
        const freshKid = await kidOf(fresh.id);
        expect(run.answer).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, removed: 0 } });
        const kids = (JSON.parse(run.after['jwks.json']!) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
        expect(new Set(kids).size).toBe(kids.length);
        expect(kids).toContain(freshKid);
        expect(kids).not.toContain(await kidOf(ambiguous.id));
        // Both CM objects behind one kid are on record; the audit names the key added once.
        const sources = JSON.parse(run.after['jwks-sources.json']!) as { keys: Record<string, { id: string }[]> };
        expect(sources.keys[freshKid]!.map((source) => source.id).sort()).toHaveLength(2);
        expect(sources.keys[await kidOf(published.id)]).toHaveLength(2);
        expect(run.audit.added.map((change) => change.kid)).toEqual([freshKid]);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_publisher_keys_skipped_total{reason="conflicting_duplicate"}')).toBe(2);
        expect(metricValue(run.metricsAfter, 'jwks_publisher_keys_published{use="sig",state="Active"}')).toBe(kids.length);
        expect(run.log).toContain('"reason":"conflicting_duplicate"');
      },
    );
  });

  it('an answer of hundreds of MB: cut off at the bound, not buffered whole, not retried; nothing written', async () => {
    addKey();
    await underFault(
      {
        arm: () => {
          stack.emulator.faults.oversizeNext({ endpoint: 'list', count: 50, bytes: 512 * 1024 * 1024 });
          stack.emulator.clearRequests();
        },
      },
      async (run) => {
        expectFailedUntouched(run, /larger than 16777216 bytes/);
        expect(delta(run.metricsBefore, run.metricsAfter, 'jwks_ciphertrust_requests_total{endpoint="keys2_list",status="too_large"}')).toBe(1);
        const oversized = stack.emulator.requests.filter((request) => request.endpoint === 'list');
        expect(oversized).toHaveLength(1);
        // key-rotated hung up at its bound: what the emulator got to write is that plus what the
        // sockets buffered, far from the 512 MiB on offer.
        await eventually(() => Promise.resolve(oversized[0]!.bytesSent !== undefined));
        expect(oversized[0]!.bytesSent).toBeGreaterThan(MAX_ANSWER_BYTES);
        expect(oversized[0]!.bytesSent).toBeLessThan(4 * MAX_ANSWER_BYTES);
      },
    );
  });

  it('never logs the CM password, a token or private key material, through all of the above', async () => {
    await Promise.all([stack.keyRotated.logsWritten(), jwksGet.logsWritten()]);
    for (const output of [stack.keyRotated.output(), jwksGet.output()]) {
      expect(output.length).toBeGreaterThan(0);
      // The password (raw, escaped, URL-encoded), JWTs, bearer credentials, private JWK members.
      expectNoSecretsInLogs(output, { secrets: [PUBLISHER_PASSWORD, ...credentialValues(stack.env)] });
      expect(output).not.toContain('PRIVATE KEY');
    }
  });
});
