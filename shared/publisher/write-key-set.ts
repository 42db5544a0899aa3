import { serializeKey } from '../jwks/serialize.js';
import type { PublicJwk } from '../jwks/validate.js';
import { KEY_SET_OBJECT, keyObjectName, type KeySetStore, type ObjectName } from '../store/store.js';

export interface WriteReport {
  readonly written: readonly ObjectName[];
  readonly removed: readonly ObjectName[];
}

/**
 * Writes a key set so that a reader never sees jwks.json list a key whose file is not there yet:
 * per-kid files first, then jwks.json (the commit point, one atomic replace on either backend),
 * then stale per-kid files, only those that the jwks.json now in the store no longer lists (another
 * replica may have published a newer set meanwhile). Unchanged objects are not rewritten.
 */
export async function writeKeySet(
  store: KeySetStore,
  keys: readonly PublicJwk[],
  setBytes: Buffer,
  currentSetBytes: Buffer | undefined,
  maxBytes: number,
): Promise<WriteReport> {
  const written: ObjectName[] = [];
  for (const key of keys) {
    const name = keyObjectName(key.kid);
    const bytes = serializeKey(key);
    const existing = await store.read(name, { maxBytes });
    if (existing.kind === 'found' && existing.object.body.equals(bytes)) continue;
    await store.write(name, bytes);
    written.push(name);
  }
  if (currentSetBytes === undefined || !currentSetBytes.equals(setBytes)) {
    await store.write(KEY_SET_OBJECT, setBytes);
    written.push(KEY_SET_OBJECT);
  }

  const keep = new Set(keys.map((key) => keyObjectName(key.kid)));
  const stale = (await store.list()).filter((name) => name !== KEY_SET_OBJECT && !keep.has(name));
  if (stale.length === 0) return { written, removed: [] };
  const listedNow = await kidsListedInStore(store, maxBytes);
  if (listedNow === undefined) return { written, removed: [] };
  const removed: ObjectName[] = [];
  for (const name of stale) {
    if (listedNow.has(name)) continue;
    await store.remove(name);
    removed.push(name);
  }
  return { written, removed };
}

/** Object names of the keys the stored jwks.json lists; undefined when it cannot be read as JSON. */
async function kidsListedInStore(store: KeySetStore, maxBytes: number): Promise<Set<ObjectName> | undefined> {
  const result = await store.read(KEY_SET_OBJECT, { maxBytes });
  if (result.kind !== 'found') return undefined;
  try {
    const document = JSON.parse(result.object.body.toString('utf8')) as { keys?: { kid?: unknown }[] };
    const names = new Set<ObjectName>();
    for (const key of document.keys ?? []) {
      if (typeof key.kid === 'string') {
        try {
          names.add(keyObjectName(key.kid));
        } catch {
          // a kid that cannot name a file cannot protect one either
        }
      }
    }
    return names;
  } catch {
    return undefined;
  }
}
