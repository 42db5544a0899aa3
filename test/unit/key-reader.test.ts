import { CipherTrustError } from '../../shared/ciphertrust/errors.js';
import { CipherTrustKeyReader } from '../../shared/ciphertrust/key-reader.js';
import { matchesLabelSelector } from '../../shared/ciphertrust/label-selector.js';
import { ecCmKey } from '../support/cm-keys.js';

/** A CM whose listing and single-key answers are set by the test; counts the GETs. */
function fakeCm(resources: Record<string, unknown>[]) {
  const gets: string[] = [];
  const answers = new Map<string, () => unknown>();
  const client = {
    // CM's listing may omit publickey (the reference): this one always does.
    listKeys: () => Promise.resolve(resources.map((resource) => Object.fromEntries(Object.entries(resource).filter(([name]) => name !== 'publickey')))),
    getKey: (id: string) => {
      gets.push(id);
      const answer = answers.get(id);
      return Promise.resolve(answer !== undefined ? answer() : resources.find((resource) => resource.id === id));
    },
  };
  return { client, gets, answers };
}

describe('CipherTrustKeyReader', () => {
  it('fetches the public key of each key pair once, and again only when version or updatedAt moves', async () => {
    const keys = [ecCmKey('prime256v1').key, ecCmKey('secp384r1').key] as unknown as Record<string, unknown>[];
    const cm = fakeCm(keys);
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 2 });
    const first = await reader.read();
    expect(first.keys.every((key) => key.publickey?.includes('BEGIN PUBLIC KEY'))).toBe(true);
    expect(cm.gets).toHaveLength(2);
    await reader.read();
    expect(cm.gets).toHaveLength(2);
    keys[0]!.updatedAt = '2026-11-24T00:00:00.000Z';
    const third = await reader.read();
    expect(cm.gets).toEqual([keys[0]!.id, keys[1]!.id, keys[0]!.id]);
    expect(third.fetched).toBe(1);
  });

  it('asks again next time for a public key that did not parse', async () => {
    const key = ecCmKey('prime256v1').key as unknown as Record<string, unknown>;
    const cm = fakeCm([key]);
    cm.answers.set(key.id as string, () => ({ ...key, publickey: '-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----' }));
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1 });
    await reader.read();
    cm.answers.clear();
    const second = await reader.read();
    expect(cm.gets).toHaveLength(2);
    expect(second.keys[0]!.publickey).toBe(key.publickey);
  });

  it('ignores listed keys that do not match the selector, even if CM returned them', async () => {
    const labelled = ecCmKey('prime256v1').key;
    const stranger = ecCmKey('prime256v1', { labels: { team: 'payments' } }).key;
    const cm = fakeCm([labelled, stranger] as unknown as Record<string, unknown>[]);
    const result = await new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1 }).read();
    expect(result.keys.map((key) => key.id)).toEqual([labelled.id]);
    expect(result.outsideSelector).toEqual([{ id: stranger.id, name: stranger.name }]);
    expect(cm.gets).toEqual([labelled.id]);
  });

  it('asks again, after short waits, for a listed key whose GET answers 404 (a cluster node not replicated yet)', async () => {
    const key = ecCmKey('prime256v1').key;
    const cm = fakeCm([key] as unknown as Record<string, unknown>[]);
    let misses = 2;
    cm.answers.set(key.id, () => {
      if (misses-- > 0) throw new CipherTrustError('rejected', 'keys2_get', 'not found', { status: 404 });
      return key;
    });
    const waits: number[] = [];
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1, sleep: (ms) => Promise.resolve(void waits.push(ms)) });
    const read = await reader.read();
    expect(read.keys.map((found) => found.publickey)).toEqual([key.publickey]);
    expect(cm.gets).toEqual([key.id, key.id, key.id]);
    expect(waits).toEqual([300, 700]);
  });

  it('keeps a listed key whose GET keeps answering 404 as listed, without a public key: only a listing without it removes it', async () => {
    const [kept, lagging] = [ecCmKey('prime256v1').key, ecCmKey('prime256v1').key];
    const cm = fakeCm([kept, lagging] as unknown as Record<string, unknown>[]);
    cm.answers.set(lagging.id, () => {
      throw new CipherTrustError('rejected', 'keys2_get', 'not found', { status: 404 });
    });
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1, sleep: () => Promise.resolve() });
    const read = await reader.read();
    // Dropped, it would read as "CM no longer has it" and a published kid would be withdrawn.
    expect(read.keys.map((key) => [key.id, key.publickey !== undefined])).toEqual([
      [kept.id, true],
      [lagging.id, false],
    ]);
    expect(read.malformed.map(({ id }) => id)).toEqual([lagging.id]);
    expect(read.malformed[0]!.problem).toContain('404');
    expect(cm.gets.filter((id) => id === lagging.id)).toHaveLength(3);
  });

  it('fails the read on any other GET error', async () => {
    const key = ecCmKey('prime256v1').key;
    const cm = fakeCm([key] as unknown as Record<string, unknown>[]);
    cm.answers.set(key.id, () => {
      throw new CipherTrustError('rejected', 'keys2_get', 'forbidden', { status: 403 });
    });
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1, sleep: () => Promise.resolve() });
    await expect(reader.read()).rejects.toThrow('forbidden');
    expect(cm.gets).toEqual([key.id]);
  });

  it('keeps a key whose GET answer cannot be read, as listed and without a public key, and asks again next time', async () => {
    const key = ecCmKey('prime256v1').key;
    const cm = fakeCm([key] as unknown as Record<string, unknown>[]);
    cm.answers.set(key.id, () => undefined);
    const reader = new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1 });
    const first = await reader.read();
    // Dropped, it would read as "CM no longer has it" and its published kid would be withdrawn.
    expect(first.keys.map((read) => [read.id, read.publickey])).toEqual([[key.id, undefined]]);
    expect(first.malformed).toEqual([{ id: key.id, problem: 'not a JSON object' }]);
    cm.answers.clear();
    expect((await reader.read()).keys[0]!.publickey).toBe(key.publickey);
    expect(cm.gets).toEqual([key.id, key.id]);
  });

  it('fetches Public Key objects too, and reports resources it cannot read', async () => {
    const twin = { ...ecCmKey('prime256v1').key, objectType: 'Public Key' };
    const cm = fakeCm([twin, { id: 'broken' }]);
    const result = await new CipherTrustKeyReader(cm.client, { selector: 'jwks=publish', pageSize: 100, concurrency: 1 }).read();
    expect(cm.gets).toEqual([twin.id]);
    expect(result.malformed).toEqual([{ id: 'broken', problem: 'no state' }]);
  });
});

describe('matchesLabelSelector', () => {
  it('needs every pair to match', () => {
    expect(matchesLabelSelector({ jwks: 'publish', team: 'core' }, 'jwks=publish')).toBe(true);
    expect(matchesLabelSelector({ jwks: 'publish' }, 'jwks=publish,team=core')).toBe(false);
    expect(matchesLabelSelector({ jwks: 'published' }, 'jwks=publish')).toBe(false);
    expect(matchesLabelSelector({ flag: '' }, 'flag=')).toBe(true);
  });
});
