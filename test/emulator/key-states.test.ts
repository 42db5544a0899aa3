/**
 * The key states CM has beyond KMIP's six, as the emulator models them: protect-stop (entered by
 * its date or by reactivation, left by reactivation), the spelling it is answered in, and a state
 * the emulator does not model at all (the forceState fault).
 */
import type { CmKeyResource } from '../../emulator/index.js';
import { PROTECT_STOP_STATE } from '../../emulator/index.js';
import { ManualClock, call, login, startTestEmulator, type TestEmulator } from './support.js';

const KEYS = '/api/v1/vault/keys2';
const FAULTS = '/emulator/v1/faults';

describe('protect-stop and states the emulator does not model', () => {
  const clock = new ManualClock();
  let emulator: TestEmulator;
  let token: string;
  beforeAll(async () => {
    emulator = await startTestEmulator({ now: clock.now });
    token = await login(emulator);
  });
  afterAll(() => emulator.stop());
  afterEach(() => emulator.faults.clear());

  const get = async (id: string): Promise<CmKeyResource> => (await call(emulator, 'GET', `${KEYS}/${id}`, { token })).json as unknown as CmKeyResource;
  const post = (id: string, action: string, body: unknown = {}): ReturnType<typeof call> => call(emulator, 'POST', `${KEYS}/${id}/${action}`, { token, body });
  const patch = (id: string, body: unknown): ReturnType<typeof call> => call(emulator, 'PATCH', `${KEYS}/${id}`, { token, body });
  const listState = async (state: string): Promise<string[]> =>
    ((await call(emulator, 'GET', `${KEYS}?state=${encodeURIComponent(state)}`, { token })).json.resources as CmKeyResource[] | null ?? []).map((key) => key.id);

  test('an Active key enters protect-stop when its protectStopDate passes, then Deactivated at its deactivationDate', async () => {
    const key = emulator.keys.create({ name: 'ps-dated', algorithm: 'ec' });
    expect((await patch(key.id, { protectStopDate: clock.iso(60), deactivationDate: clock.iso(120) })).status).toBe(200);
    expect((await get(key.id)).state).toBe('Active');
    const due = clock.iso(60);
    clock.advance(61);
    expect(await get(key.id)).toMatchObject({ state: PROTECT_STOP_STATE, protectStopDate: due, updatedAt: due });
    expect(await listState(PROTECT_STOP_STATE)).toContain(key.id);
    // Out of Active, its protect-stop date is history.
    expect((await patch(key.id, { protectStopDate: clock.iso(600) })).status).toBe(400);
    clock.advance(60);
    expect((await get(key.id)).state).toBe('Deactivated');
  });

  test('reactivation reasons move a key into and out of protect-stop; each needs the state it leaves', async () => {
    const key = emulator.keys.create({ name: 'ps-reasons', algorithm: 'rsa', size: 2048 });
    expect((await post(key.id, 'reactivate', { reason: 'ActiveProtectStopToActive' })).status).toBe(400);
    await post(key.id, 'revoke', { reason: 'Superseded', message: 'rotated' });
    clock.advance(10);
    const stopped = await post(key.id, 'reactivate', { reason: 'DeactivatedToActiveProtectStop' });
    expect(stopped.status).toBe(200);
    expect(stopped.json).toMatchObject({ state: PROTECT_STOP_STATE, protectStopDate: clock.iso(), updatedAt: clock.iso() });
    for (const gone of ['deactivationDate', 'revocationReason', 'revocationMessage']) expect(stopped.json).not.toHaveProperty(gone);
    expect(stopped.json.publickey).toBe(key.publickey);
    expect((await post(key.id, 'reactivate', { reason: 'DeactivatedToActive' })).status).toBe(400);
    const active = await post(key.id, 'reactivate', { reason: 'ActiveProtectStopToActive' });
    expect(active.json.state).toBe('Active');
    expect(active.json).not.toHaveProperty('protectStopDate');
    // Revoked from protect-stop like from Active; programmatically too.
    emulator.keys.reactivate(emulator.keys.revoke(key.id, 'Superseded').id, 'DeactivatedToActiveProtectStop');
    expect(emulator.keys.revoke(key.id, 'Superseded').state).toBe('Deactivated');
  });

  test('spellState answers a modelled state in another spelling until cleared, over REST too', async () => {
    const key = emulator.keys.create({ name: 'ps-spelled', algorithm: 'ec' });
    emulator.keys.reactivate(emulator.keys.revoke(key.id, 'Superseded').id, 'DeactivatedToActiveProtectStop');
    for (const spelling of ['ProtectStop', 'Protect Stop', 'ActiveProtectStop', 'active-protect-stop']) {
      emulator.faults.spellState(PROTECT_STOP_STATE, spelling);
      expect((await get(key.id)).state).toBe(spelling);
    }
    const armed = await call(emulator, 'POST', FAULTS, { token, body: { spellState: { state: 'Active', as: 'ACTIVE' } } });
    expect(armed.json.stateSpellings).toEqual({ [PROTECT_STOP_STATE]: 'active-protect-stop', Active: 'ACTIVE' });
    expect((await get(emulator.keys.create({ name: 'shouted', algorithm: 'ec' }).id)).state).toBe('ACTIVE');
    expect((await call(emulator, 'POST', FAULTS, { token, body: { spellState: { state: 'Suspended', as: 'x' } } })).status).toBe(400);
    expect((await call(emulator, 'POST', FAULTS, { token, body: { spellState: { state: 'Active', as: '' } } })).status).toBe(400);
    await call(emulator, 'DELETE', FAULTS, { token });
    expect((await get(key.id)).state).toBe(PROTECT_STOP_STATE);
  });

  test('forceState answers a key in a state the emulator does not model, moves updatedAt, and clear restores it', async () => {
    const key = emulator.keys.create({ name: 'forced', algorithm: 'ec' });
    clock.advance(5);
    emulator.faults.forceState(key.id, 'Suspended');
    expect(await get(key.id)).toMatchObject({ state: 'Suspended', updatedAt: clock.iso() });
    expect(await listState('Suspended')).toEqual([key.id]);
    emulator.faults.clear();
    expect((await get(key.id)).state).toBe('Active');

    const armed = await call(emulator, 'POST', FAULTS, { token, body: { forceState: { id: key.id, state: 'Escrowed' } } });
    expect(armed.json.forcedStates).toEqual([key.id]);
    expect((await get(key.id)).state).toBe('Escrowed');
    for (const body of [{ forceState: { id: 'nope', state: 'X' } }, { forceState: { id: key.id, state: '' } }, { forceState: 'x' }]) {
      expect((await call(emulator, 'POST', FAULTS, { token, body })).status).toBe(400);
    }
    await call(emulator, 'DELETE', FAULTS, { token });
    expect((await get(key.id)).state).toBe('Active');
  });

  test('listingShape switches the empty page and messages over REST; clear restores the options', async () => {
    const empty = `${KEYS}?labels=none=here&whatever=1`;
    expect((await call(emulator, 'GET', empty, { token })).json).toEqual({ skip: 0, limit: 10, total: 0, resources: null, messages: ['Unknown query parameter: whatever'] });
    await call(emulator, 'POST', FAULTS, { token, body: { listingShape: { emptyResources: 'array', queryMessages: false } } });
    expect((await call(emulator, 'GET', empty, { token })).json).toEqual({ skip: 0, limit: 10, total: 0, resources: [] });
    expect((await call(emulator, 'POST', FAULTS, { token, body: { listingShape: { emptyResources: 'none' } } })).status).toBe(400);
    await call(emulator, 'DELETE', FAULTS, { token });
    expect((await call(emulator, 'GET', empty, { token })).json.resources).toBeNull();
  });
});

test('the listing shape options: [] and no messages when started so', async () => {
  const emulator = await startTestEmulator({ emptyListing: 'array', queryMessages: false });
  try {
    const token = await login(emulator);
    expect((await call(emulator, 'GET', `${KEYS}?bogus=1`, { token })).json).toEqual({ skip: 0, limit: 10, total: 0, resources: [] });
  } finally {
    await emulator.stop();
  }
});
