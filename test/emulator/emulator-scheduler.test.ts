/**
 * The emulator's model of CM's key-rotation scheduler and of date-driven changes: job runs,
 * offset (Pre-Active replacement), the replaced version's state after a delay, query-keys with
 * updatedAfter, and the absence of any event for all of it (CM posts none).
 */
import { PROTECT_STOP_STATE, type CmKeyResource } from '../../emulator/index.js';
import { ManualClock, call, eventually, login, startEventSink, startTestEmulator, type EventSink, type TestEmulator } from './support.js';

const KEYS = '/api/v1/vault/keys2';
const QUERY = '/api/v1/vault/query-keys';
const JOBS = '/api/v1/scheduler/job-configs';

function versionsOf(emulator: TestEmulator, name: string): CmKeyResource[] {
  return emulator.keys
    .list()
    .filter((key) => key.name === name)
    .sort((a, b) => a.version - b.version);
}

describe('key-rotation scheduler (programmatic, injected clock)', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  let sink: EventSink;
  beforeAll(async () => {
    sink = await startEventSink();
    emulator = await startTestEmulator({ now: clock.now, schedulerTickMs: 0, eventSink: sink.url });
  });
  afterAll(async () => {
    await emulator.stop();
    await sink.close();
  });
  beforeEach(() => {
    // Keys are created unheard; `listen()` starts the recording once the test's keys exist.
    emulator.setEventSink(undefined);
  });
  afterEach(() => {
    for (const job of emulator.scheduler.list()) emulator.scheduler.remove(job.id);
  });

  function listen(): void {
    sink.events.length = 0;
    emulator.setEventSink(sink.url);
  }

  /** Ends a test: a change made through the API posts its event, and it is the only one since listen(). */
  async function expectOnlyControlEvent(): Promise<void> {
    const control = emulator.keys.create({ name: `control-${Date.now()}-${Math.random()}`, algorithm: 'aes' });
    await sink.waitFor(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sink.events.map((event) => event.subject)).toEqual([control.id]);
  }

  test('a job rotates its keys every N seconds: a new Active version, no event', async () => {
    const v0 = emulator.keys.create({ name: 'every-minute', algorithm: 'ec', curveid: 'prime256v1', labels: { jwks: 'publish' } });
    listen();
    const job = emulator.scheduler.create({ name: 'rotate-every-minute', keyQuery: { names: ['every-minute'] }, everySeconds: 60 });
    expect(job.nextRunAt).toBe(clock.iso(60));

    clock.advance(59);
    expect(emulator.scheduler.runDue()).toEqual([]);
    clock.advance(1);
    const [v1] = emulator.scheduler.runDue();
    expect(v1).toMatchObject({ name: 'every-minute', version: 1, state: 'Active', activationDate: clock.iso(), labels: { jwks: 'publish' } });
    expect(v1!.id).not.toBe(v0.id);
    // Without a delay the replaced version is left as it was.
    expect(emulator.keys.get(v0.id)).toMatchObject({ state: 'Active', updatedAt: v0.updatedAt });

    clock.advance(60);
    expect(emulator.scheduler.runDue().map((key) => key.version)).toEqual([2]);
    expect(emulator.scheduler.list()[0]).toMatchObject({ runs: 2, nextRunAt: clock.iso(60) });
    await expectOnlyControlEvent();
  });

  test('a clock that jumps several periods runs a job once, then keeps its period', () => {
    emulator.keys.create({ name: 'jumpy', algorithm: 'ec', curveid: 'prime256v1' });
    emulator.scheduler.create({ name: 'jumpy-job', keyQuery: { name: 'jumpy' }, everySeconds: 10 });
    clock.advance(35);
    expect(emulator.scheduler.runDue()).toHaveLength(1);
    expect(emulator.scheduler.runDue()).toHaveLength(0);
    clock.advance(5);
    expect(emulator.scheduler.runDue()).toHaveLength(1);
  });

  test('offset: the new version starts Pre-Active and turns Active when its activationDate passes, with no event', async () => {
    emulator.keys.create({ name: 'offset', algorithm: 'rsa', size: 2048 });
    const job = emulator.scheduler.create({ name: 'offset-job', keyQuery: { names: ['offset'] }, everySeconds: 60, offsetSeconds: 300 });
    listen();
    const [next] = emulator.scheduler.runNow(job.id);
    expect(next).toMatchObject({ version: 1, state: 'Pre-Active', activationDate: clock.iso(300) });
    clock.advance(299);
    expect(emulator.keys.get(next!.id)!.state).toBe('Pre-Active');
    clock.advance(1);
    // Seen by a GET, the programmatic list and the REST listing alike.
    expect(emulator.keys.get(next!.id)!.state).toBe('Active');
    const token = await login(emulator);
    const listed = await call(emulator, 'GET', `${KEYS}?name=offset&limit=10`, { token });
    // Same createdAt (the clock did not move between them): the list's order between them is the ids'.
    const byVersion = (listed.json.resources as CmKeyResource[]).sort((a, b) => a.version - b.version);
    expect(byVersion.map((key) => [key.version, key.state])).toEqual([
      [0, 'Active'],
      [1, 'Active'],
    ]);
    await expectOnlyControlEvent();
  });

  test('the replaced version is Deactivated the configured delay after the run (a deactivationDate), with no event', async () => {
    const [v0] = [emulator.keys.create({ name: 'replaced', algorithm: 'ec', curveid: 'prime256v1' })];
    const job = emulator.scheduler.create({ name: 'replace-job', keyQuery: { names: ['replaced'] }, everySeconds: 3600, changeStateAfterSeconds: 120 });
    listen();
    const runAt = clock.iso();
    emulator.scheduler.runNow(job.id);
    // Its deactivationDate is set at the run (updatedAt moves then); the state follows the date.
    expect(emulator.keys.get(v0.id)).toMatchObject({ state: 'Active', deactivationDate: clock.iso(120), updatedAt: runAt });
    clock.advance(119);
    expect(emulator.keys.get(v0.id)!.state).toBe('Active');
    clock.advance(1);
    expect(emulator.keys.get(v0.id)).toMatchObject({ state: 'Deactivated', deactivationDate: clock.iso() });
    expect(versionsOf(emulator, 'replaced').map((key) => [key.version, key.state])).toEqual([
      [0, 'Deactivated'],
      [1, 'Active'],
    ]);
    await expectOnlyControlEvent();
  });

  test('replaced_key_state ProtectStop: the replaced version enters the protect-stop state at its time, with its protectStopDate', () => {
    const v0 = emulator.keys.create({ name: 'protect', algorithm: 'ec', curveid: 'prime256v1' });
    const job = emulator.scheduler.create({ name: 'protect-job', keyQuery: { names: ['protect'] }, everySeconds: 3600, replacedKeyState: 'ProtectStop', changeStateAfterSeconds: 30 });
    emulator.scheduler.runNow(job.id);
    clock.advance(29);
    emulator.scheduler.runDue();
    expect(emulator.keys.get(v0.id)!.state).toBe('Active');
    clock.advance(1);
    emulator.scheduler.runDue();
    expect(emulator.keys.get(v0.id)).toMatchObject({ state: PROTECT_STOP_STATE, protectStopDate: clock.iso() });
  });

  test('a job selects by labels and rotates the latest version of each key once; destroyed keys are left alone', () => {
    emulator.keys.create({ name: 'labelled-a', algorithm: 'ec', curveid: 'prime256v1', labels: { team: 'x' } });
    emulator.keys.create({ name: 'labelled-b', algorithm: 'ec', curveid: 'prime256v1', labels: { team: 'x' } });
    const gone = emulator.keys.create({ name: 'labelled-gone', algorithm: 'ec', curveid: 'prime256v1', labels: { team: 'x' } });
    emulator.keys.revoke(gone.id, 'Unspecified');
    emulator.keys.destroy(gone.id);
    const job = emulator.scheduler.create({ name: 'labelled-job', keyQuery: { labels: { team: 'x' } }, everySeconds: 60 });
    expect(
      emulator.scheduler
        .runNow(job.id)
        .map((key) => `${key.name}:${key.version}`)
        .sort(),
    ).toEqual(['labelled-a:1', 'labelled-b:1']);
    expect(
      emulator.scheduler
        .runNow(job.id)
        .map((key) => `${key.name}:${key.version}`)
        .sort(),
    ).toEqual(['labelled-a:2', 'labelled-b:2']);
  });

  test('bad job configurations are refused, naming the field', () => {
    expect(() => emulator.scheduler.create({ name: '', keyQuery: {}, everySeconds: 60 })).toThrow('name is required');
    expect(() => emulator.scheduler.create({ name: 'x', keyQuery: {}, everySeconds: 0 })).toThrow(/everySeconds must be an integer of at least 1/);
    expect(() => emulator.scheduler.create({ name: 'x', keyQuery: {}, everySeconds: 60, replacedKeyState: 'Destroyed' })).toThrow(/replaced_key_state must be one of Deactivated, ProtectStop/);
    expect(() => emulator.scheduler.create({ name: 'x', keyQuery: { updatedAfter: 'yesterday' }, everySeconds: 60 })).toThrow(/updatedAfter must be an RFC 3339 date/);
    expect(() => emulator.scheduler.create({ name: 'x', keyQuery: {}, everySeconds: 60, offsetSeconds: -1 })).toThrow(/offset must be/);
    emulator.scheduler.create({ name: 'twice', keyQuery: {}, everySeconds: 60 });
    expect(() => emulator.scheduler.create({ name: 'twice', keyQuery: {}, everySeconds: 60 })).toThrow(/already exists/);
  });
});

describe('date-driven transitions and updatedAt', () => {
  test.each([
    [true, 'moves updatedAt to the activation date'],
    [false, 'leaves updatedAt where it was'],
  ])('dateTransitionsMoveUpdatedAt %s: a date-driven activation %s; listing and query-keys see the new state', async (moves) => {
    const clock = new ManualClock();
    const emulator = await startTestEmulator({ now: clock.now, schedulerTickMs: 0, dateTransitionsMoveUpdatedAt: moves });
    try {
      const created = emulator.keys.create({ name: 'later', algorithm: 'ec', curveid: 'prime256v1', activationDate: clock.iso(600) });
      expect(created.state).toBe('Pre-Active');
      clock.advance(600);
      const token = await login(emulator);
      const listed = await call(emulator, 'GET', `${KEYS}?name=later`, { token });
      expect((listed.json.resources as CmKeyResource[])[0]).toMatchObject({ state: 'Active', updatedAt: moves ? clock.iso() : created.updatedAt });
      const queried = await call(emulator, 'POST', QUERY, { token, body: { states: ['Active'], names: ['later'] } });
      expect(queried.json).toMatchObject({ total: 1 });
      const changed = await call(emulator, 'POST', QUERY, { token, body: { updatedAfter: clock.iso(-1) } });
      expect(changed.json.total).toBe(moves ? 1 : 0);
    } finally {
      await emulator.stop();
    }
  });
});

describe('REST: query-keys and scheduler job configurations', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  let token: string;
  beforeAll(async () => {
    emulator = await startTestEmulator({ now: clock.now, schedulerTickMs: 0 });
    token = await login(emulator);
  });
  afterAll(() => emulator.stop());

  test('query-keys: updatedAfter is a strict lower bound; the answer is the list envelope, ids only with returnOnlyIDs', async () => {
    const old = emulator.keys.create({ name: 'q-old', algorithm: 'ec', curveid: 'prime256v1', labels: { jwks: 'publish' } });
    clock.advance(10);
    const fresh = emulator.keys.create({ name: 'q-new', algorithm: 'ec', curveid: 'prime256v1' });
    emulator.clearRequests();
    const after = await call(emulator, 'POST', QUERY, { token, body: { updatedAfter: old.updatedAt } });
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ skip: 0, limit: 10, total: 1 });
    const [resource] = after.json.resources as CmKeyResource[];
    expect(resource).toMatchObject({ id: fresh.id, updatedAt: fresh.updatedAt });
    // Like the list, no publickey unless the emulator is told to include it.
    expect(resource).not.toHaveProperty('publickey');

    const ids = await call(emulator, 'POST', QUERY, { token, body: { updatedAfter: clock.iso(-60), returnOnlyIDs: true, limit: 1 } });
    expect(ids.json).toMatchObject({ total: 2, limit: 1, resources: [old.id] });
    const labelled = await call(emulator, 'POST', QUERY, { token, body: { labels: { jwks: 'publish' } } });
    expect((labelled.json.resources as CmKeyResource[]).map((key) => key.id)).toEqual([old.id]);
    const none = await call(emulator, 'POST', QUERY, { token, body: { updatedAfter: fresh.updatedAt } });
    expect(none.json).toMatchObject({ total: 0, resources: [] });
    expect(emulator.requests.map((request) => [request.endpoint, request.status])).toEqual([
      ['query', 200],
      ['query', 200],
      ['query', 200],
      ['query', 200],
    ]);
  });

  test.each([
    [{ updatedAfter: 'not a date' }, /updatedAfter must be an RFC 3339 date/],
    [{ returnOnlyIDs: 'yes' }, /returnOnlyIDs must be a boolean/],
    [{ limit: -1 }, /limit must be a non-negative integer/],
    [{ states: 'Active' }, /states must be an array of strings/],
    [{ labels: ['jwks'] }, /labels must map names to strings/],
  ])('query-keys refuses %j with a 400 naming the field', async (body, message) => {
    const answer = await call(emulator, 'POST', QUERY, { token, body });
    expect(answer.status).toBe(400);
    expect(answer.json.message).toMatch(message);
  });

  test('query-keys needs a token, and takes POST only', async () => {
    expect((await call(emulator, 'POST', QUERY, { body: {} })).status).toBe(401);
    expect((await call(emulator, 'GET', QUERY, { token })).status).toBe(405);
  });

  test('job-configs: create (cron run_at), list, get, delete; the job runs on its schedule', async () => {
    emulator.keys.create({ name: 'rest-rotated', algorithm: 'ec', curveid: 'prime256v1' });
    const created = await call(emulator, 'POST', JOBS, {
      token,
      body: {
        name: 'rest-job',
        operation: 'key_rotation',
        run_at: '*/2 * * * *',
        key_rotation_params: { key_query: JSON.stringify({ names: ['rest-rotated'] }), offset: 60, replaced_key_state: 'Deactivated', deactivate_replaced_key: 600 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'rest-job',
      operation: 'key_rotation',
      run_at: '*/2 * * * *',
      key_rotation_params: { key_query: { names: ['rest-rotated'] }, offset: 60, replaced_key_state: 'Deactivated', change_state_after_time: 600 },
      next_run_at: clock.iso(120),
    });
    const id = created.json.id as string;
    expect((await call(emulator, 'GET', JOBS, { token })).json).toMatchObject({ total: 1, resources: [{ id, name: 'rest-job' }] });
    expect((await call(emulator, 'GET', `${JOBS}/${id}`, { token })).json).toMatchObject({ id, runs: 0 });

    clock.advance(120);
    const [next] = emulator.scheduler.runDue();
    expect(next).toMatchObject({ name: 'rest-rotated', version: 1, state: 'Pre-Active', activationDate: clock.iso(60) });
    expect(versionsOf(emulator, 'rest-rotated')[0]).toMatchObject({ deactivationDate: clock.iso(600) });

    expect((await call(emulator, 'DELETE', `${JOBS}/${id}`, { token })).status).toBe(200);
    expect((await call(emulator, 'GET', `${JOBS}/${id}`, { token })).status).toBe(404);
    expect(emulator.requests.some((request) => request.endpoint === 'scheduler')).toBe(true);
  });

  test.each([
    [{ name: 'a', operation: 'database_backup', run_at: '* * * * *' }, /operation key_rotation only/],
    [{ name: 'a', operation: 'key_rotation', run_at: '* * * * *' }, /key_rotation_params is required/],
    [{ name: 'a', operation: 'key_rotation', run_at: '0 9 * * 1', key_rotation_params: { key_query: {} } }, /run_at "0 9 \* \* 1": the emulator understands/],
    [{ name: 'a', operation: 'key_rotation', run_at: '* * * * *', key_rotation_params: { key_query: '{' } }, /key_query is not valid JSON/],
    [{ name: 'a', operation: 'key_rotation', run_at: '* * * * *', key_rotation_params: { key_query: {}, replaced_key_state: 'Gone' } }, /replaced_key_state must be one of/],
  ])('job-configs refuses %j with a 400', async (body, message) => {
    const answer = await call(emulator, 'POST', JOBS, { token, body });
    expect(answer.status).toBe(400);
    expect(answer.json.message).toMatch(message);
  });
});

describe('key-rotation scheduler in real time', () => {
  test('with its timer on, a job every second rotates without anyone calling it', async () => {
    const emulator = await startTestEmulator({ schedulerTickMs: 50 });
    try {
      emulator.keys.create({ name: 'realtime', algorithm: 'ec', curveid: 'prime256v1' });
      const token = await login(emulator);
      const created = await call(emulator, 'POST', JOBS, {
        token,
        body: { name: 'fast', operation: 'key_rotation', run_at: '* * * * *', emulator_every_seconds: 1, key_rotation_params: { key_query: { names: ['realtime'] } } },
      });
      expect(created.status).toBe(201);
      await eventually(() => versionsOf(emulator, 'realtime').length >= 3, 10_000);
    } finally {
      await emulator.stop();
    }
  });
});
