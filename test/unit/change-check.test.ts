/**
 * The change check against the emulator (real HTTPS client, query-keys, the emulator's
 * scheduler), with one injected clock for the emulator and the check. A tick's publication is the
 * real key reader feeding the check, as the publication cycle does; its outcome is scripted.
 */
import { CipherTrustClient } from '../../shared/ciphertrust/client.js';
import { KeyChangeQuery, readChanges } from '../../shared/ciphertrust/key-changes.js';
import { CipherTrustKeyReader } from '../../shared/ciphertrust/key-reader.js';
import { CipherTrustSession } from '../../shared/ciphertrust/session.js';
import { CipherTrustTransport } from '../../shared/ciphertrust/transport.js';
import { CipherTrustError } from '../../shared/ciphertrust/errors.js';
import { ChangeCheck, CHANGE_WINDOW_OVERLAP_MS, type CheckOutcome } from '../../shared/publisher/change-check.js';
import { CM_TRANSITION_GRACE_MS, nextDueDate } from '../../shared/publisher/due-dates.js';
import type { CycleOutcome, CycleResult, CycleTrigger } from '../../shared/publisher/publication-cycle.js';
import type { CmKey } from '../../shared/ciphertrust/cm-key.js';
import { capturingLogger } from '../support/capture.js';
import { ManualClock, startTestEmulator, type TestEmulator } from '../emulator/support.js';

const RETAIN_MS = 600_000;
const SIGN = 3;
const ENCRYPT = 12;

interface Harness {
  readonly emulator: TestEmulator;
  readonly clock: ManualClock;
  readonly check: ChangeCheck;
  readonly outcomes: CheckOutcome[];
  readonly published: CycleTrigger[];
  readonly log: ReturnType<typeof capturingLogger>;
  /** What the next publications end with (default: published). */
  nextOutcome: CycleOutcome;
  tick(): ReturnType<ChangeCheck['tick']>;
  /** Requests the emulator recorded during `action`, as [endpoint, status]. */
  requestsDuring(action: () => Promise<unknown>): Promise<[string, number][]>;
  close(): Promise<void>;
}

async function harness(options: { dateTransitionsMoveUpdatedAt?: boolean } = {}): Promise<Harness> {
  const clock = new ManualClock();
  const emulator = await startTestEmulator({ now: clock.now, schedulerTickMs: 0, ...options });
  const transport = new CipherTrustTransport({
    nodes: [emulator.url],
    caPem: emulator.caPem,
    clientCertPem: undefined,
    clientKeyPem: undefined,
    timeoutMs: 2000,
    retry: { maxAttempts: 1, budgetMs: 1000, baseDelayMs: 10, maxDelayMs: 10 },
    maxSockets: 2,
  });
  const session = new CipherTrustSession(transport, { type: 'password', username: 'admin', password: 'admin' }, undefined, () => clock.now().getTime());
  const client = new CipherTrustClient(transport, session);
  const reader = new CipherTrustKeyReader(client, { selector: 'jwks=publish', pageSize: 100, concurrency: 2 });
  const outcomes: CheckOutcome[] = [];
  const log = capturingLogger('key-rotated');
  const check = new ChangeCheck({
    changes: new KeyChangeQuery(client),
    logger: log.logger,
    observer: { changeCheck: (outcome) => outcomes.push(outcome) },
    retainDeactivatedMs: RETAIN_MS,
    now: clock.now,
  });
  const published: CycleTrigger[] = [];
  const h: Harness = {
    emulator,
    clock,
    check,
    outcomes,
    published,
    log,
    nextOutcome: 'published',
    // The publication as the cycle runs it: a full read observed by the check, then its outcome.
    tick: () =>
      check.tick(async (trigger) => {
        published.push(trigger);
        const read = await reader.read();
        check.observe(read.keys);
        check.cycleFinished(h.nextOutcome);
        return { outcome: h.nextOutcome, added: [], removed: [], keys: read.keys.length, filesWritten: 0, filesRemoved: 0 } satisfies CycleResult;
      }, 'tick-id'),
    async requestsDuring(action) {
      emulator.clearRequests();
      await action();
      return emulator.requests.map((request) => [request.endpoint, request.status]);
    },
    async close() {
      transport.close();
      await emulator.stop();
    },
  };
  return h;
}

describe('ChangeCheck against the emulator', () => {
  let h: Harness;
  afterEach(() => h?.close());

  /** A labelled signing key, and the baseline the first tick builds (no baseline yet: a full cycle). */
  async function started(options?: { dateTransitionsMoveUpdatedAt?: boolean }): Promise<void> {
    h = await harness(options);
    h.emulator.keys.create({ name: 'signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: { jwks: 'publish' } });
    expect(await h.tick()).toMatchObject({ outcome: 'due', reason: 'no_baseline', publication: { outcome: 'published' } });
    h.clock.advance(60);
  }

  it('a tick with nothing changed and no date due makes exactly one CM request, and runs no publication', async () => {
    await started();
    const requests = await h.requestsDuring(() => h.tick());
    expect(requests).toEqual([['query', 200]]);
    expect(h.published).toHaveLength(1);
    expect(h.outcomes).toEqual(['due', 'unchanged']);
    // A quiet minute is a debug line, never an info line.
    expect(h.log.lines().filter((line) => line.event === 'change_check' && line.outcome === 'unchanged').map((line) => line.level)).toEqual(['debug']);
  });

  it('a scheduled rotation (no event) is seen at the next tick, publishes once, and is not seen again', async () => {
    await started();
    const job = h.emulator.scheduler.create({ name: 'rotate', keyQuery: { names: ['signing'] }, everySeconds: 3600 });
    h.emulator.scheduler.runNow(job.id);
    h.clock.advance(60);
    expect(await h.tick()).toMatchObject({ outcome: 'changed', reason: 'changes', publication: { outcome: 'published' } });
    expect(h.published.at(-1)).toEqual({ kind: 'change-check', eventId: 'tick-id', eventType: 'dev.knative.sources.ping' });
    expect(h.log.lines().find((line) => line.event === 'change_check' && line.outcome === 'changed')).toMatchObject({ level: 'info', publication: 'published' });
    h.clock.advance(60);
    expect(await h.tick()).toMatchObject({ outcome: 'unchanged' });
    expect(h.published).toHaveLength(2);
  });

  it('a change to a key outside the selector costs one publication, then nothing more', async () => {
    await started();
    h.emulator.keys.create({ name: 'someone-elses', algorithm: 'aes' });
    h.clock.advance(60);
    expect((await h.tick()).outcome).toBe('changed');
    h.clock.advance(60);
    expect((await h.tick()).outcome).toBe('unchanged');
  });

  it('a change whose publication failed stays unhandled: the next tick publishes again', async () => {
    await started();
    h.emulator.scheduler.runNow(h.emulator.scheduler.create({ name: 'rotate', keyQuery: { names: ['signing'] }, everySeconds: 3600 }).id);
    h.clock.advance(60);
    h.nextOutcome = 'failed';
    expect(await h.tick()).toMatchObject({ outcome: 'changed', publication: { outcome: 'failed' } });
    h.clock.advance(60);
    h.nextOutcome = 'published';
    expect(await h.tick()).toMatchObject({ outcome: 'changed', publication: { outcome: 'published' } });
    h.clock.advance(60);
    expect((await h.tick()).outcome).toBe('unchanged');
  });

  it('CM failing the query is a failed check (a warning), and the next tick asks again', async () => {
    await started();
    h.emulator.faults.failNext({ endpoint: 'query', status: 503, count: 1 });
    expect(await h.tick()).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/503/) as unknown });
    expect(h.log.lines().find((line) => line.outcome === 'failed')).toMatchObject({ level: 'warn', event: 'change_check' });
    expect((await h.tick()).outcome).toBe('unchanged');
    expect(h.outcomes).toEqual(['due', 'failed', 'unchanged']);
  });

  it('a change replicated late (updatedAt up to the overlap before the newest one handled) is still seen', async () => {
    await started();
    const newest = h.emulator.keys.create({ name: 'newest', algorithm: 'aes' });
    h.clock.advance(60);
    expect((await h.tick()).outcome).toBe('changed');
    // A change stamped before the newest one handled (another node's clock), showing up only now.
    h.clock.advance(-60 - CHANGE_WINDOW_OVERLAP_MS / 2000);
    const replicated = h.emulator.keys.create({ name: 'replicated', algorithm: 'aes' });
    expect(replicated.updatedAt < newest.updatedAt).toBe(true);
    h.clock.advance(60 + CHANGE_WINDOW_OVERLAP_MS / 2000 + 60);
    expect((await h.tick()).outcome).toBe('changed');
    h.clock.advance(60);
    expect((await h.tick()).outcome).toBe('unchanged');
  });

  describe.each([true, false])('when a date-driven transition moves updatedAt: %s', (moves) => {
    it('an offset (Pre-Active) rotation is seen at once; the activation is due at its date, with no CM update', async () => {
      await started({ dateTransitionsMoveUpdatedAt: moves });
      h.emulator.keys.create({ name: 'encryption', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT, labels: { jwks: 'publish' }, activationDate: h.clock.iso(300) });
      h.clock.advance(60);
      expect((await h.tick()).outcome).toBe('changed');
      expect(h.check.nextDueAt?.toISOString()).toBe(h.clock.iso(240));
      h.clock.advance(180);
      expect((await h.tick()).outcome).toBe('unchanged');
      h.clock.advance(60);
      const requests = await h.requestsDuring(async () => expect(await h.tick()).toMatchObject({ outcome: 'due', reason: 'date' }));
      // The due tick asks no query: its publication's full read is what it needs.
      expect(requests.filter(([endpoint]) => endpoint === 'query')).toEqual([]);
      h.clock.advance(60);
      expect((await h.tick()).outcome).toBe('unchanged');
    });

    it("a Deactivated key's retention window ending is due at its end, with no CM update", async () => {
      await started({ dateTransitionsMoveUpdatedAt: moves });
      const signing = h.emulator.keys.list().find((key) => key.name === 'signing')!;
      h.emulator.keys.revoke(signing.id, 'Superseded');
      h.clock.advance(60);
      expect((await h.tick()).outcome).toBe('changed');
      const end = new Date(Date.parse(h.emulator.keys.get(signing.id)!.deactivationDate!) + RETAIN_MS);
      expect(h.check.nextDueAt).toEqual(end);
      h.clock.advance(RETAIN_MS / 1000 - 61);
      expect((await h.tick()).outcome).toBe('unchanged');
      h.clock.advance(61);
      expect(await h.tick()).toMatchObject({ outcome: 'due', reason: 'date' });
      expect(h.check.nextDueAt).toBeUndefined();
    });

    it('the replaced version deactivated by the scheduler after its delay is due at that date', async () => {
      await started({ dateTransitionsMoveUpdatedAt: moves });
      const job = h.emulator.scheduler.create({ name: 'rotate', keyQuery: { names: ['signing'] }, everySeconds: 3600, changeStateAfterSeconds: 120 });
      h.emulator.scheduler.runNow(job.id);
      h.clock.advance(30);
      expect((await h.tick()).outcome).toBe('changed');
      expect(h.check.nextDueAt?.toISOString()).toBe(h.clock.iso(90));
      h.clock.advance(90);
      expect((await h.tick()).outcome).toBe('due');
      // Now Deactivated: its retention end is the next date.
      expect(h.check.nextDueAt?.toISOString()).toBe(new Date(h.clock.now().getTime() + RETAIN_MS).toISOString());
    });
  });
});

describe('readChanges: the query-keys answer, read tolerantly', () => {
  it.each([
    ['the list envelope', { skip: 0, limit: 100, total: 1, resources: [{ id: 'a', updatedAt: '2030-01-01T00:00:00.123456Z' }] }, { total: 1, keys: [{ id: 'a', updatedAt: '2030-01-01T00:00:00.123456Z' }] }],
    ['resources null when nothing matches', { total: 0, resources: null }, { total: 0, keys: [] }],
    ['ids only (returnOnlyIDs)', { total: 3, resources: ['a', 'b'] }, { total: 3, keys: [{ id: 'a', updatedAt: undefined }, { id: 'b', updatedAt: undefined }] }],
    ['no total', { resources: [{ id: 'a' }] }, { total: 1, keys: [{ id: 'a', updatedAt: undefined }] }],
    ['an unreadable updatedAt', { total: 1, resources: [{ id: 'a', updatedAt: 'soon' }] }, { total: 1, keys: [{ id: 'a', updatedAt: undefined }] }],
  ])('%s', (_what, answer, expected) => {
    expect(readChanges(answer)).toEqual(expected);
  });

  it.each([
    ['not an object', []],
    ['resources not an array', { total: 1, resources: {} }],
    ['an object without id', { total: 1, resources: [{ name: 'x' }] }],
  ])('%s is a malformed answer', (_what, answer) => {
    expect(() => readChanges(answer)).toThrow(CipherTrustError);
  });
});

describe('nextDueDate', () => {
  const at = new Date('2030-01-01T00:00:00Z');
  const key = (state: string, dates: { activationDate?: string; deactivationDate?: string; protectStopDate?: string }): CmKey =>
    ({ id: state, name: state, version: 0, algorithm: 'EC', size: undefined, curveid: 'prime256v1', usageMask: 3, objectType: 'Private Key', state, labels: {}, publickey: undefined, updatedAt: '', deactivationDate: undefined, protectStopDate: undefined, ...dates });

  it('takes the earliest future date among activation, deactivation and the end of retention', () => {
    const keys = [
      key('Pre-Active', { activationDate: '2030-01-01T00:10:00Z' }),
      key('Active', { deactivationDate: '2030-01-01T00:05:00Z' }),
      key('Deactivated', { deactivationDate: '2029-12-31T23:59:00Z' }),
    ];
    // Retention of 60 s ends exactly now: not after `at`, so the Active key's deactivation comes first.
    expect(nextDueDate(keys, at, 60_000)?.toISOString()).toBe('2030-01-01T00:05:00.000Z');
    expect(nextDueDate(keys, at, 120_000)?.toISOString()).toBe('2030-01-01T00:01:00.000Z');
  });

  it('ignores past dates, dates of states they do not change, and unreadable dates', () => {
    expect(nextDueDate([key('Active', { activationDate: '2030-01-02T00:00:00Z' }), key('Pre-Active', { activationDate: 'tomorrow' }), key('Compromised', { deactivationDate: '2030-01-02T00:00:00Z' })], at, 0)).toBeUndefined();
    expect(nextDueDate([key('Pre-Active', { activationDate: '2029-01-01T00:00:00Z' })], at, 0)).toBeUndefined();
    // A retention end just past was applied by the read's own cycle (same clock).
    expect(nextDueDate([key('Deactivated', { deactivationDate: '2029-12-31T23:59:50Z' })], at, 5_000)).toBeUndefined();
  });

  it('knows protect-stop in any spelling: entering it (an enc key leaves) and the end of its retention (a sig key leaves)', () => {
    // A scheduled rotation's replaced key, due to enter protect-stop in 5 minutes.
    expect(nextDueDate([key('Active', { protectStopDate: '2030-01-01T00:05:00Z' })], at, 0)?.toISOString()).toBe('2030-01-01T00:05:00.000Z');
    for (const spelling of ['Active Protect Stop', 'ProtectStop', 'protect-stop']) {
      // In protect-stop since a minute ago: retention of 10 minutes ends 9 minutes from now.
      expect(nextDueDate([key(spelling, { protectStopDate: '2029-12-31T23:59:00Z' })], at, 600_000)?.toISOString()).toBe('2030-01-01T00:09:00.000Z');
    }
    // The known states in other spellings too.
    expect(nextDueDate([key('PRE_ACTIVE', { activationDate: '2030-01-01T00:10:00Z' })], at, 0)?.toISOString()).toBe('2030-01-01T00:10:00.000Z');
  });

  it('keeps a CM transition due for a while when the read still shows the state before it (CM lagging)', () => {
    const lagging = key('Pre-Active', { activationDate: '2029-12-31T23:59:50Z' });
    expect(nextDueDate([lagging], at, 0)?.toISOString()).toBe('2029-12-31T23:59:50.000Z');
    expect(nextDueDate([key('Active', { deactivationDate: '2029-12-31T23:59:45Z' })], at, 0)?.toISOString()).toBe('2029-12-31T23:59:45.000Z');
    expect(nextDueDate([key('Pre-Active', { activationDate: new Date(at.getTime() - CM_TRANSITION_GRACE_MS).toISOString() })], at, 0)).toBeUndefined();
  });
});
