import { serializeKey, serializeKeySet } from '../../shared/jwks/serialize.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { writeKeySet } from '../../shared/publisher/write-key-set.js';
import { KEY_SET_OBJECT, keyObjectName, type KeySetStore, type ObjectName } from '../../shared/store/store.js';
import { openBackend, type BackendName, type TestBackend } from '../support/backends.js';
import { ecKey } from '../support/keys.js';

const MAX = 1024 * 1024;

/** Records the store operations in order, passing them through to a real backend. */
function recording(store: KeySetStore): { store: KeySetStore; operations: string[] } {
  const operations: string[] = [];
  return {
    operations,
    store: {
      location: store.location,
      read: (name, options) => store.read(name, options),
      list: () => store.list(),
      write: async (name: ObjectName, body: Buffer) => {
        operations.push(`write ${name}`);
        await store.write(name, body);
      },
      remove: async (name: ObjectName) => {
        operations.push(`remove ${name}`);
        await store.remove(name);
      },
    },
  };
}

async function write(store: KeySetStore, keys: PublicJwk[]) {
  const current = await store.read(KEY_SET_OBJECT, { maxBytes: MAX });
  return writeKeySet(store, keys, serializeKeySet(keys), current.kind === 'found' ? current.object.body : undefined, MAX);
}

describe.each<BackendName>(['file', 's3'])('writeKeySet on the %s backend', (backendName) => {
  let backend: TestBackend;
  let keys: PublicJwk[];

  beforeAll(async () => {
    backend = await openBackend(backendName);
    keys = (await Promise.all([ecKey('P-256'), ecKey('P-384'), ecKey('P-521')])).map((key) => key.jwk);
  });
  afterAll(() => backend.close());

  it('writes per-kid files first, then jwks.json, then removes only stale per-kid files', async () => {
    await write(backend.store, [keys[0]!, keys[1]!]);
    const { store, operations } = recording(backend.store);
    const report = await write(store, [keys[1]!, keys[2]!]);
    expect(operations).toEqual([`write ${keyObjectName(keys[2]!.kid)}`, `write ${KEY_SET_OBJECT}`, `remove ${keyObjectName(keys[0]!.kid)}`]);
    expect(report).toEqual({ written: [keyObjectName(keys[2]!.kid), KEY_SET_OBJECT], removed: [keyObjectName(keys[0]!.kid)] });
    const stored = await backend.store.read(KEY_SET_OBJECT, { maxBytes: MAX });
    expect(stored.kind === 'found' && stored.object.body.equals(serializeKeySet([keys[1]!, keys[2]!]))).toBe(true);
    const perKid = await backend.store.read(keyObjectName(keys[2]!.kid), { maxBytes: MAX });
    expect(perKid.kind === 'found' && perKid.object.body.equals(serializeKey(keys[2]!))).toBe(true);
  });

  it('writes nothing when nothing changed', async () => {
    const { store, operations } = recording(backend.store);
    const report = await write(store, [keys[1]!, keys[2]!]);
    expect(operations).toEqual([]);
    expect(report).toEqual({ written: [], removed: [] });
  });

  it('repairs a per-kid file that differs from what would be published', async () => {
    await backend.store.write(keyObjectName(keys[1]!.kid), Buffer.from('{"tampered":true}'));
    const { store, operations } = recording(backend.store);
    await write(store, [keys[1]!, keys[2]!]);
    expect(operations).toEqual([`write ${keyObjectName(keys[1]!.kid)}`]);
  });

  it('does not remove a per-kid file that a newer jwks.json (another replica) lists', async () => {
    // Another replica published keys[0] back after this one computed its set without it.
    await backend.store.write(keyObjectName(keys[0]!.kid), serializeKey(keys[0]!));
    const newer = serializeKeySet([keys[0]!, keys[1]!, keys[2]!]);
    const racing: KeySetStore = {
      ...backend.store,
      location: backend.store.location,
      read: (name, options) => backend.store.read(name, options),
      list: () => backend.store.list(),
      remove: (name) => backend.store.remove(name),
      write: async (name, body) => {
        await backend.store.write(name, body);
        if (name === KEY_SET_OBJECT) await backend.store.write(KEY_SET_OBJECT, newer);
      },
    };
    const current = await backend.store.read(KEY_SET_OBJECT, { maxBytes: MAX });
    const report = await writeKeySet(racing, [keys[1]!], serializeKeySet([keys[1]!]), current.kind === 'found' ? current.object.body : undefined, MAX);
    expect(report.removed).toEqual([]);
    expect((await backend.store.read(keyObjectName(keys[0]!.kid), { maxBytes: MAX })).kind).toBe('found');
  });
});
