import { serializeKey, serializeKeySet } from '../../shared/jwks/serialize.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { writeKeySet } from '../../shared/publisher/write-key-set.js';
import { KEY_SET_OBJECT, SOURCES_OBJECT, StoreError, keyObjectName, type KeySetStore, type ObjectName } from '../../shared/store/store.js';
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

async function bytesOf(store: KeySetStore, name: ObjectName): Promise<Buffer | undefined> {
  const result = await store.read(name, { maxBytes: MAX });
  return result.kind === 'found' ? result.object.body : undefined;
}

/** A sources record naming each key after its kid, enough to see it written and compared. */
function sourcesFor(keys: PublicJwk[]): Buffer {
  return Buffer.from(JSON.stringify({ keys: Object.fromEntries(keys.map((key) => [key.kid, [{ id: `cm-${key.kid}`, name: 'k', version: 0 }]])) }));
}

async function write(store: KeySetStore, keys: PublicJwk[]) {
  const current = { bytes: await bytesOf(store, KEY_SET_OBJECT), sourcesBytes: await bytesOf(store, SOURCES_OBJECT) };
  return writeKeySet(store, { keys, setBytes: serializeKeySet(keys), sourcesBytes: sourcesFor(keys), current, maxBytes: MAX });
}

describe.each<BackendName>(['file', 's3'])('writeKeySet on the %s backend', (backendName) => {
  let backend: TestBackend;
  let keys: PublicJwk[];

  beforeAll(async () => {
    backend = await openBackend(backendName);
    keys = (await Promise.all([ecKey('P-256'), ecKey('P-384'), ecKey('P-521')])).map((key) => key.jwk);
  });
  afterAll(() => backend.close());

  it('writes per-kid files first, then jwks.json, then the sources record, then removes only stale per-kid files', async () => {
    await write(backend.store, [keys[0]!, keys[1]!]);
    const { store, operations } = recording(backend.store);
    const report = await write(store, [keys[1]!, keys[2]!]);
    expect(operations).toEqual([
      `write ${keyObjectName(keys[2]!.kid)}`,
      `write ${KEY_SET_OBJECT}`,
      `write ${SOURCES_OBJECT}`,
      `remove ${keyObjectName(keys[0]!.kid)}`,
    ]);
    expect(report).toEqual({ written: [keyObjectName(keys[2]!.kid), KEY_SET_OBJECT, SOURCES_OBJECT], removed: [keyObjectName(keys[0]!.kid)], replacedPrivate: [] });
    expect((await bytesOf(backend.store, SOURCES_OBJECT))?.equals(sourcesFor([keys[1]!, keys[2]!]))).toBe(true);
    const stored = await backend.store.read(KEY_SET_OBJECT, { maxBytes: MAX });
    expect(stored.kind === 'found' && stored.object.body.equals(serializeKeySet([keys[1]!, keys[2]!]))).toBe(true);
    const perKid = await backend.store.read(keyObjectName(keys[2]!.kid), { maxBytes: MAX });
    expect(perKid.kind === 'found' && perKid.object.body.equals(serializeKey(keys[2]!))).toBe(true);
  });

  it('writes nothing when nothing changed', async () => {
    const { store, operations } = recording(backend.store);
    const report = await write(store, [keys[1]!, keys[2]!]);
    expect(operations).toEqual([]);
    expect(report).toEqual({ written: [], removed: [], replacedPrivate: [] });
  });

  it('repairs a per-kid file that differs from what would be published', async () => {
    await backend.store.write(keyObjectName(keys[1]!.kid), Buffer.from('{"tampered":true}'));
    const { store, operations } = recording(backend.store);
    await write(store, [keys[1]!, keys[2]!]);
    expect(operations).toEqual([`write ${keyObjectName(keys[1]!.kid)}`]);
  });

  it('reports a per-kid file it replaced because it held private key material', async () => {
    const name = keyObjectName(keys[1]!.kid);
    await backend.store.write(name, Buffer.from(JSON.stringify({ ...keys[1]!, d: 'c2VjcmV0' })));
    const report = await write(backend.store, [keys[1]!, keys[2]!]);
    expect(report.replacedPrivate).toEqual([name]);
    expect(report.written).toEqual([name]);
    expect(await bytesOf(backend.store, name)).toEqual(serializeKey(keys[1]!));
  });

  it('commits nothing when another writer replaced jwks.json since it was read', async () => {
    const current = { bytes: await bytesOf(backend.store, KEY_SET_OBJECT), sourcesBytes: await bytesOf(backend.store, SOURCES_OBJECT) };
    // Another replica publishes between our read and our commit.
    const newer = serializeKeySet([keys[0]!, keys[1]!, keys[2]!]);
    await backend.store.write(keyObjectName(keys[0]!.kid), serializeKey(keys[0]!));
    await backend.store.write(KEY_SET_OBJECT, newer);
    const error = await writeKeySet(backend.store, {
      keys: [keys[1]!],
      setBytes: serializeKeySet([keys[1]!]),
      sourcesBytes: sourcesFor([keys[1]!]),
      current,
      maxBytes: MAX,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).failure).toBe('conflict');
    expect((await bytesOf(backend.store, KEY_SET_OBJECT))?.equals(newer)).toBe(true);
    expect((await backend.store.read(keyObjectName(keys[0]!.kid), { maxBytes: MAX })).kind).toBe('found');
  });

  it('does not remove a per-kid file that a jwks.json committed after its own lists', async () => {
    const current = { bytes: await bytesOf(backend.store, KEY_SET_OBJECT), sourcesBytes: await bytesOf(backend.store, SOURCES_OBJECT) };
    const newer = serializeKeySet([keys[0]!, keys[1]!, keys[2]!]);
    const racing: KeySetStore = {
      location: backend.store.location,
      read: (name, options) => backend.store.read(name, options),
      list: () => backend.store.list(),
      remove: (name) => backend.store.remove(name),
      write: async (name, body) => {
        await backend.store.write(name, body);
        // Another replica commits right after this one.
        if (name === KEY_SET_OBJECT) await backend.store.write(KEY_SET_OBJECT, newer);
      },
    };
    const report = await writeKeySet(racing, { keys: [keys[1]!], setBytes: serializeKeySet([keys[1]!]), sourcesBytes: sourcesFor([keys[1]!]), current, maxBytes: MAX });
    expect(report.removed).toEqual([]);
    expect((await backend.store.read(keyObjectName(keys[0]!.kid), { maxBytes: MAX })).kind).toBe('found');
  });
});
