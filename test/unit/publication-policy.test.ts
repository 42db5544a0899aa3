import { convertCmKey } from '../../shared/publisher/cm-key-to-jwk.js';
import { checkGuards } from '../../shared/publisher/guards.js';
import { applyPublicationPolicy, type PreviousPublication } from '../../shared/publisher/publication-policy.js';
import { recogniseState, type CmKey } from '../../shared/ciphertrust/cm-key.js';
import { ENCRYPT_DECRYPT, SIGN_VERIFY, ecCmKey, type FixtureOptions } from '../support/cm-keys.js';

const NOW = new Date('2026-11-24T12:00:00.000Z');
const HOUR = 3_600_000;
const RETAIN = 48 * HOUR;

async function plan(keys: readonly CmKey[], now = NOW) {
  return applyPublicationPolicy(await Promise.all(keys.map((key) => convertCmKey(key))), now, RETAIN);
}

function key(options: FixtureOptions & { use?: 'sig' | 'enc' } = {}): CmKey {
  return ecCmKey('prime256v1', { usageMask: options.use === 'enc' ? ENCRYPT_DECRYPT : SIGN_VERIFY, ...options }).key;
}

async function publishedStates(use: 'sig' | 'enc'): Promise<string[]> {
  const states = ['Pre-Active', 'Active', 'Deactivated', 'Compromised', 'Destroyed', 'Destroyed Compromised'];
  const keys = states.map((state) => key({ use, state, name: state, deactivationDate: new Date(NOW.getTime() - HOUR).toISOString() }));
  const outcome = await plan(keys);
  return outcome.keys.map((planned) => planned.sources[0]!.state).sort();
}

describe('applyPublicationPolicy', () => {
  it('publishes signing keys that are Pre-Active, Active, or Deactivated within the retention', async () => {
    expect(await publishedStates('sig')).toEqual(['Active', 'Deactivated', 'Pre-Active']);
  });

  it('publishes encryption keys only while Active', async () => {
    expect(await publishedStates('enc')).toEqual(['Active']);
  });

  it('keeps a deactivated signing key exactly until its deactivation date plus the retention', async () => {
    const deactivated = key({ state: 'Deactivated', deactivationDate: '2026-11-22T12:00:00.000Z' });
    expect((await plan([deactivated], new Date('2026-11-24T11:59:59.999Z'))).keys).toHaveLength(1);
    expect((await plan([deactivated], new Date('2026-11-24T12:00:00.000Z'))).keys).toHaveLength(0);
  });

  it('falls back to updatedAt for a deactivated key without deactivationDate', async () => {
    const recent = key({ state: 'Deactivated', updatedAt: new Date(NOW.getTime() - HOUR).toISOString() });
    const old = key({ state: 'Deactivated', updatedAt: new Date(NOW.getTime() - RETAIN - HOUR).toISOString() });
    const outcome = await plan([recent, old]);
    expect(outcome.keys.map((planned) => planned.sources[0]!.id)).toEqual([recent.id]);
  });

  it('lists compromised and destroyed keys as withdrawn, with their kid and CM identity', async () => {
    const compromised = key({ state: 'Compromised', name: 'payments-signing', version: 3 });
    const outcome = await plan([compromised]);
    expect(outcome.keys).toEqual([]);
    expect([...outcome.withdrawn.values()]).toEqual([{ id: compromised.id, name: 'payments-signing', version: 3, state: 'Compromised' }]);
  });

  it('withholds key material that any CM object marks compromised, even if another copy is active', async () => {
    const active = key({ state: 'Active' });
    const copy: CmKey = { ...active, id: 'copy', state: 'Compromised' };
    const outcome = await plan([active, copy]);
    expect(outcome.keys).toEqual([]);
    expect(outcome.withdrawn.size).toBe(1);
  });

  it('publishes one entry for the same material held twice, naming the most current source first', async () => {
    const deactivated = key({ state: 'Deactivated', deactivationDate: NOW.toISOString() });
    const active: CmKey = { ...deactivated, id: 'zzz-active', state: 'Active', deactivationDate: undefined };
    const outcome = await plan([deactivated, active]);
    expect(outcome.keys).toHaveLength(1);
    expect(outcome.keys[0]!.sources.map((source) => source.state)).toEqual(['Active', 'Deactivated']);
  });

  it('withholds every copy of material held twice with different use or alg', async () => {
    const signing = key();
    const other: CmKey = { ...signing, id: 'other', usageMask: ENCRYPT_DECRYPT };
    const outcome = await plan([signing, other]);
    expect(outcome.keys).toEqual([]);
    expect(outcome.skipped.map((skipped) => skipped.reason)).toEqual(['conflicting_duplicate', 'conflicting_duplicate']);
  });

  it('skips a key in a state CM does not define', async () => {
    const outcome = await plan([key({ state: 'Suspended' })]);
    expect(outcome.keys).toEqual([]);
    expect(outcome.skipped.map((skipped) => skipped.reason)).toEqual(['unknown_state']);
  });

  it('publishes a protect-stop signing key for the retention after its protectStopDate, never an encryption key', async () => {
    const since = new Date(NOW.getTime() - RETAIN + HOUR).toISOString();
    const signing = key({ state: 'Active Protect Stop', protectStopDate: since });
    const expired = key({ state: 'ProtectStop', protectStopDate: new Date(NOW.getTime() - RETAIN).toISOString() });
    const encryption = key({ use: 'enc', state: 'Protect Stop', protectStopDate: NOW.toISOString() });
    const outcome = await plan([signing, expired, encryption]);
    expect(outcome.keys.map((planned) => planned.sources[0]!.id)).toEqual([signing.id]);
    expect(outcome.skipped).toEqual([]);
  });

  it('does not publish an Active encryption key past its protectStopDate, but keeps an Active signing key', async () => {
    const past = new Date(NOW.getTime() - HOUR).toISOString();
    const ahead = new Date(NOW.getTime() + HOUR).toISOString();
    const [stopped, upcoming, signing] = [key({ use: 'enc', protectStopDate: past }), key({ use: 'enc', protectStopDate: ahead }), key({ protectStopDate: past })];
    const outcome = await plan([stopped, upcoming, signing]);
    expect(outcome.keys.map((planned) => planned.sources[0]!.id).sort()).toEqual([upcoming.id, signing.id].sort());
  });

  it('counts protect-stop retention from updatedAt when protectStopDate is missing or still ahead', async () => {
    const recent = new Date(NOW.getTime() - HOUR).toISOString();
    const old = new Date(NOW.getTime() - RETAIN - HOUR).toISOString();
    const ahead = new Date(NOW.getTime() + HOUR).toISOString();
    const kept = [key({ state: 'ActiveProtectStop', updatedAt: recent }), key({ state: 'ActiveProtectStop', updatedAt: recent, protectStopDate: ahead })];
    const gone = [key({ state: 'ActiveProtectStop', updatedAt: old }), key({ state: 'ActiveProtectStop', updatedAt: old, protectStopDate: ahead })];
    const outcome = await plan([...kept, ...gone]);
    expect(outcome.keys.map((planned) => planned.sources[0]!.id).sort()).toEqual(kept.map((candidate) => candidate.id).sort());
  });

  it('sorts the keys by kid whatever order CM listed them in', async () => {
    const keys = [key(), key(), key(), key()];
    const forward = (await plan(keys)).keys.map((planned) => planned.jwk.kid);
    const backward = (await plan([...keys].reverse())).keys.map((planned) => planned.jwk.kid);
    expect(forward).toEqual([...forward].sort());
    expect(backward).toEqual(forward);
  });
});

describe('applyPublicationPolicy with what was published before', () => {
  /** What a previous cycle recorded after publishing these keys. */
  async function publishedBefore(keys: CmKey[]): Promise<PreviousPublication> {
    const before = await plan(keys);
    return {
      kidsByCmId: new Map(before.keys.flatMap((planned) => planned.sources.map((source) => [source.id, planned.jwk.kid] as const))),
      keys: new Map(before.keys.map((planned) => [planned.jwk.kid, planned.jwk])),
    };
  }

  async function planAfter(keys: readonly CmKey[], previous: PreviousPublication) {
    return applyPublicationPolicy(await Promise.all(keys.map((key) => convertCmKey(key))), NOW, RETAIN, previous);
  }

  it('withdraws a destroyed key whose material CM no longer returns, by the kid recorded for it', async () => {
    const signing = key({ state: 'Deactivated', deactivationDate: NOW.toISOString(), name: 'old-signing' });
    const previous = await publishedBefore([signing]);
    const destroyed: CmKey = { ...signing, state: 'Destroyed', publickey: undefined };
    const outcome = await planAfter([destroyed], previous);
    expect(outcome.keys).toEqual([]);
    expect([...outcome.withdrawn.entries()]).toEqual([[[...previous.keys.keys()][0], { id: signing.id, name: 'old-signing', version: 0, state: 'Destroyed' }]]);
  });

  it('keeps a published key as it is while CM answers its public key unreadable, if its state still publishes it', async () => {
    const [signing, other] = [key(), key()];
    const previous = await publishedBefore([signing, other]);
    const outcome = await planAfter([{ ...signing, publickey: 'garbage' }, other], previous);
    expect(outcome.keys.map((planned) => planned.jwk.kid).sort()).toEqual([...previous.keys.keys()].sort());
    expect(outcome.kept).toEqual([previous.kidsByCmId.get(signing.id)]);
    expect(outcome.skipped.map((skipped) => skipped.reason)).toEqual(['malformed_public_key']);
  });

  it('does not keep an unreadable key whose state no longer publishes it, or that was never published', async () => {
    const encryption = key({ use: 'enc' });
    const previous = await publishedBefore([encryption]);
    const deactivated = await planAfter([{ ...encryption, state: 'Deactivated', publickey: 'garbage' }], previous);
    expect(deactivated.keys).toEqual([]);
    expect(deactivated.kept).toEqual([]);
    const stranger = await planAfter([{ ...key(), publickey: 'garbage' }], previous);
    expect(stranger.kept).toEqual([]);
  });

  it('keeps a published key that CM reports in a state nobody here knows, readable or not, and reports it', async () => {
    const [signing, encryption, unreadable, other] = [key(), key({ use: 'enc' }), key(), key()];
    const previous = await publishedBefore([signing, encryption, unreadable, other]);
    const kidOf = (candidate: CmKey): string => previous.kidsByCmId.get(candidate.id)!;
    const outcome = await planAfter(
      [{ ...signing, state: 'Suspended' }, { ...encryption, state: 'Suspended' }, { ...unreadable, state: 'On Hold', publickey: 'garbage' }, other],
      previous,
    );
    expect(outcome.keys.map((planned) => planned.jwk.kid).sort()).toEqual([...previous.keys.keys()].sort());
    expect(outcome.keptUnknownState.map(({ kid, source }) => [kid, source.state])).toEqual(
      [
        [kidOf(signing), 'Suspended'],
        [kidOf(encryption), 'Suspended'],
        [kidOf(unreadable), 'On Hold'],
      ].sort(([a], [b]) => (a! < b! ? -1 : 1)),
    );
    expect(outcome.kept).toEqual([kidOf(unreadable)]);
  });

  it('does not keep a key in an unknown state that a compromised copy withdraws', async () => {
    const signing = key();
    const previous = await publishedBefore([signing]);
    const outcome = await planAfter([{ ...signing, state: 'Suspended' }, { ...signing, id: 'twin', objectType: 'Public Key', state: 'compromised' }], previous);
    expect(outcome.keys).toEqual([]);
    expect(outcome.keptUnknownState).toEqual([]);
  });

  it('withholds the pair when its Public Key twin is compromised', async () => {
    const pair = key();
    const twin: CmKey = { ...pair, id: 'twin', objectType: 'Public Key', state: 'Compromised' };
    const outcome = await plan([pair, twin]);
    expect(outcome.keys).toEqual([]);
    expect([...outcome.withdrawn.values()].map((source) => source.id)).toEqual(['twin']);
  });
});

describe('recogniseState', () => {
  it.each([
    ['Pre-Active', 'Pre-Active'],
    ['pre-active', 'Pre-Active'],
    ['PreActive', 'Pre-Active'],
    ['Pre Active', 'Pre-Active'],
    ['ACTIVE', 'Active'],
    ['Deactivated', 'Deactivated'],
    ['Compromised', 'Compromised'],
    ['Destroyed', 'Destroyed'],
    ['Destroyed Compromised', 'Destroyed Compromised'],
    ['Destroyed-Compromised', 'Destroyed Compromised'],
    ['DestroyedCompromised', 'Destroyed Compromised'],
    ['compromisedDestroyed', 'Destroyed Compromised'],
    // Protect-stop: no source shows CM's string (L); every candidate is accepted.
    ['Active Protect Stop', 'Protect Stop'],
    ['ActiveProtectStop', 'Protect Stop'],
    ['Protect Stop', 'Protect Stop'],
    ['ProtectStop', 'Protect Stop'],
    ['Active-Protect-Stop', 'Protect Stop'],
    ['active_protect_stop', 'Protect Stop'],
    [' PROTECT  STOP ', 'Protect Stop'],
  ])('reads %j as %s', (spelling, state) => {
    expect(recogniseState(spelling)).toBe(state);
  });

  it.each(['Suspended', 'Active Protect', 'Stopped', 'Deactivate', '', 'Activ e2'])('knows no state %j', (spelling) => {
    expect(recogniseState(spelling)).toBeUndefined();
  });
});

describe('checkGuards', () => {
  const base = { withdrawnKids: new Set<string>(), allowEmpty: false, confirmRemoval: false };

  it('refuses an empty set, first publication included, unless JWKS_ALLOW_EMPTY', () => {
    expect(checkGuards({ ...base, publishedKids: [], nextKids: [] })?.guard).toBe('empty_set');
    expect(checkGuards({ ...base, publishedKids: ['a'], nextKids: [] })?.guard).toBe('empty_set');
    expect(checkGuards({ ...base, publishedKids: ['a'], nextKids: [], allowEmpty: true })?.guard).toBe('mass_removal');
    expect(checkGuards({ ...base, publishedKids: [], nextKids: [], allowEmpty: true })).toBeUndefined();
  });

  it('refuses removing more than half of the published keys, and allows exactly half', () => {
    expect(checkGuards({ ...base, publishedKids: ['a', 'b', 'c'], nextKids: ['a'] })?.guard).toBe('mass_removal');
    expect(checkGuards({ ...base, publishedKids: ['a', 'b', 'c', 'd'], nextKids: ['a', 'b', 'x', 'y'] })).toBeUndefined();
    expect(checkGuards({ ...base, publishedKids: ['a'], nextKids: ['b'] })?.message).toContain('1 of 1');
  });

  it('does not count compromised or destroyed keys as removals', () => {
    const withdrawnKids = new Set(['b', 'c']);
    expect(checkGuards({ ...base, withdrawnKids, publishedKids: ['a', 'b', 'c'], nextKids: ['a'] })).toBeUndefined();
  });

  it('publishes an empty set when every removed key was compromised: a compromised key is never kept', () => {
    expect(checkGuards({ ...base, withdrawnKids: new Set(['a']), publishedKids: ['a'], nextKids: [] })).toBeUndefined();
    expect(checkGuards({ ...base, withdrawnKids: new Set(['a']), publishedKids: ['a', 'b'], nextKids: [] })?.guard).toBe('empty_set');
  });

  it('lets an operator confirm a large removal, but not an empty set', () => {
    expect(checkGuards({ ...base, confirmRemoval: true, publishedKids: ['a', 'b', 'c'], nextKids: ['d'] })).toBeUndefined();
    expect(checkGuards({ ...base, confirmRemoval: true, publishedKids: ['a', 'b', 'c'], nextKids: [] })?.guard).toBe('empty_set');
  });
});
