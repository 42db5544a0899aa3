import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CmKey } from '../../shared/ciphertrust/cm-key.js';
import type { KeyReadResult } from '../../shared/ciphertrust/key-reader.js';
import { PublisherMetrics } from '../../shared/observability/publisher-metrics.js';
import { convertCmKey } from '../../shared/publisher/cm-key-to-jwk.js';
import { PublicationCycle } from '../../shared/publisher/publication-cycle.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { KEY_SET_OBJECT, type KeySetStore } from '../../shared/store/store.js';
import { capturingLogger } from '../support/capture.js';
import { ecCmKey } from '../support/cm-keys.js';

const MAX = 1024 * 1024;

async function kidOf(key: CmKey): Promise<string> {
  const conversion = await convertCmKey(key);
  return conversion.kind === 'converted' ? conversion.jwk.kid : '';
}

describe('PublicationCycle', () => {
  let directory: string;
  let store: FileKeySetStore;

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'cycle-'));
    store = new FileKeySetStore(directory);
  });
  afterEach(() => rm(directory, { recursive: true, force: true }));

  function cycleWith(keys: () => CmKey[], target: KeySetStore = store, caps: { maxKeys?: number; maxSetBytes?: number } = {}) {
    const log = capturingLogger('key-rotated');
    let reads = 0;
    const reader = {
      read: (): Promise<KeyReadResult> => {
        reads++;
        return Promise.resolve({ keys: keys(), malformed: [], outsideSelector: [], fetched: 0 });
      },
    };
    const cycle = new PublicationCycle({
      reader,
      store: target,
      logger: log.logger,
      observer: new PublisherMetrics({ defaultMetrics: false }),
      retainDeactivatedMs: 3_600_000,
      allowEmpty: false,
      maxSetBytes: caps.maxSetBytes ?? MAX,
      maxKeys: caps.maxKeys ?? 20,
    });
    return { cycle, log, reads: () => reads };
  }

  it('starts over from CM when another writer commits during its write, and never overwrites that newer set blindly', async () => {
    const compromised = ecCmKey('prime256v1').key;
    const survivor = ecCmKey('prime256v1').key;
    let cmState: CmKey[] = [compromised, survivor];
    await cycleWith(() => cmState).cycle.run([{ kind: 'ping' }]);

    // Replica B sees the compromise and commits while replica A, which read CM before it, writes.
    const stale = [compromised, survivor, ecCmKey('secp384r1').key];
    const replicaB = cycleWith(() => [{ ...compromised, state: 'Compromised' }, survivor]);
    let interfered = false;
    const racing: KeySetStore = {
      location: store.location,
      read: (name, options) => store.read(name, options),
      list: () => store.list(),
      remove: (name) => store.remove(name),
      write: async (name, body) => {
        if (!interfered) {
          interfered = true;
          cmState = [{ ...compromised, state: 'Compromised' }, survivor];
          await replicaB.cycle.run([{ kind: 'rotation' }]);
        }
        await store.write(name, body);
      },
    };
    let calls = 0;
    const replicaA = cycleWith(() => (calls++ === 0 ? stale : [...cmState, stale[2]!]), racing);
    const result = await replicaA.cycle.run([{ kind: 'ping' }]);

    expect(result.outcome).toBe('published');
    expect(replicaA.reads()).toBe(2);
    expect(replicaA.log.text()).toContain('"event":"publication_conflict"');
    const stored = await store.read(KEY_SET_OBJECT, { maxBytes: MAX });
    const kids = stored.kind === 'found' ? (JSON.parse(stored.object.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid) : [];
    expect(kids.sort()).toEqual([await kidOf(survivor), await kidOf(stale[2]!)].sort());
    expect(kids).not.toContain(await kidOf(compromised));
    expect(replicaA.log.lines().filter((line) => line.audit === true)).toHaveLength(1);
  });

  it('writes one audit record and answers failed when CM keeps being rewritten under it', async () => {
    const keys = [ecCmKey('prime256v1').key];
    const always: KeySetStore = {
      location: store.location,
      // Someone else commits a different set before every read of it.
      read: async (name, options) => {
        if (name === KEY_SET_OBJECT) await store.write(KEY_SET_OBJECT, Buffer.from(`{"keys":[],"n":${Math.random()}}`));
        return store.read(name, options);
      },
      list: () => store.list(),
      remove: (name) => store.remove(name),
      write: (name, body) => store.write(name, body),
    };
    const { cycle, log, reads } = cycleWith(() => keys, always);
    const result = await cycle.run([{ kind: 'ping' }]);
    expect(result).toMatchObject({ outcome: 'failed', failure: 'store' });
    expect(reads()).toBe(3);
    expect(log.lines().filter((line) => line.audit === true)).toHaveLength(1);
  });

  describe('caps partners can hold (JWKS_MAX_KEYS, JWKS_MAX_BYTES)', () => {
    const ecKeys = (count: number): CmKey[] => Array.from({ length: count }, () => ecCmKey('prime256v1').key);
    const publishedKids = async (): Promise<string[]> => {
      const stored = await store.read(KEY_SET_OBJECT, { maxBytes: MAX });
      return stored.kind === 'found' ? (JSON.parse(stored.object.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort() : [];
    };

    it('publishes a set at JWKS_MAX_KEYS and refuses one key more, keeping the current set', async () => {
      const cm = ecKeys(3);
      expect(await cycleWith(() => cm, store, { maxKeys: 3 }).cycle.run([{ kind: 'ping' }])).toMatchObject({ outcome: 'published', keys: 3 });
      const before = await publishedKids();
      cm.push(...ecKeys(1));
      const { cycle, log } = cycleWith(() => cm, store, { maxKeys: 3 });
      const result = await cycle.run([{ kind: 'ping' }]);
      expect(result).toMatchObject({ outcome: 'refused', guard: { guard: 'max_keys' }, keys: 4 });
      expect(result.message).toContain('4 keys, over JWKS_MAX_KEYS (3)');
      expect(await publishedKids()).toEqual(before);
      expect(log.lines().find((line) => line.audit === true)).toMatchObject({ outcome: 'refused', guard: 'max_keys' });
    });

    it('refuses a set over JWKS_MAX_BYTES as the max_bytes guard', async () => {
      const result = await cycleWith(() => ecKeys(8), store, { maxSetBytes: 1024 }).cycle.run([{ kind: 'ping' }]);
      expect(result).toMatchObject({ outcome: 'refused', guard: { guard: 'max_bytes' } });
      expect(result.message).toMatch(/would be \d+ bytes, over JWKS_MAX_BYTES \(1024\)/);
      expect(await publishedKids()).toEqual([]);
    });

    it('withdraws a compromised key even when the new set is over the cap: the additions wait', async () => {
      const cm = ecKeys(3);
      await cycleWith(() => cm, store, { maxKeys: 3 }).cycle.run([{ kind: 'ping' }]);
      const compromised = cm[0]!;
      const next = [{ ...compromised, state: 'Compromised' }, cm[1]!, cm[2]!, ...ecKeys(2)];
      const result = await cycleWith(() => next, store, { maxKeys: 3 }).cycle.run([{ kind: 'ping' }]);
      expect(result).toMatchObject({ outcome: 'published', guard: { guard: 'max_keys' }, keys: 2, added: [] });
      expect(result.removed.map((key) => key.kid)).toEqual([await kidOf(compromised)]);
      expect(result.message).toContain('2 new key(s) held back');
      expect(await publishedKids()).toEqual([await kidOf(cm[1]!), await kidOf(cm[2]!)].sort());
    });

    it('withdraws a compromised key from a set already above a lowered JWKS_MAX_BYTES, which stays readable', async () => {
      const cm = ecKeys(5);
      await cycleWith(() => cm).cycle.run([{ kind: 'ping' }]);
      const next = [{ ...cm[0]!, state: 'Compromised' }, ...cm.slice(1)];
      const result = await cycleWith(() => next, store, { maxSetBytes: 700 }).cycle.run([{ kind: 'ping' }]);
      expect(result).toMatchObject({ outcome: 'published', guard: { guard: 'max_bytes' }, keys: 4 });
      expect(await publishedKids()).toEqual((await Promise.all(cm.slice(1).map(kidOf))).sort());
    });

    it('refuses a set already above a lowered cap until it shrinks to the cap', async () => {
      const cm = ecKeys(4);
      await cycleWith(() => cm, store, { maxKeys: 4 }).cycle.run([{ kind: 'ping' }]);
      expect(await cycleWith(() => cm, store, { maxKeys: 3 }).cycle.run([{ kind: 'ping' }])).toMatchObject({ outcome: 'refused', guard: { guard: 'max_keys' } });
      expect(await cycleWith(() => cm.slice(1), store, { maxKeys: 3 }).cycle.run([{ kind: 'ping' }])).toMatchObject({ outcome: 'published', keys: 3 });
    });
  });
});
