import { KeySetRefusedError } from '../jwks/errors.js';
import { serializeKey } from '../jwks/serialize.js';
import { validateSingleJwk, type PublicJwk } from '../jwks/validate.js';
import { KEY_SET_OBJECT, SOURCES_OBJECT, StoreError, keyObjectName, type KeySetStore, type ObjectName } from '../store/store.js';

export interface KeySetWrite {
  readonly keys: readonly PublicJwk[];
  readonly setBytes: Buffer;
  /** jwks-sources.json for this set. */
  readonly sourcesBytes: Buffer;
  /** The stored jwks.json and jwks-sources.json this set was computed against. */
  readonly current: { readonly bytes: Buffer | undefined; readonly sourcesBytes: Buffer | undefined };
  readonly maxBytes: number;
}

export interface WriteReport {
  readonly written: readonly ObjectName[];
  readonly removed: readonly ObjectName[];
  /** Per-kid files that held private key material (written by someone else): replaced, to be reported. */
  readonly replacedPrivate: readonly ObjectName[];
}

/**
 * Writes a key set so that a reader never sees jwks.json list a key whose file is not there yet:
 * per-kid files first, then jwks.json (the commit point, one atomic replace on either backend),
 * then the sources record, then stale per-kid files, only those that the jwks.json now in the
 * store no longer lists. Unchanged objects are not rewritten.
 *
 * Just before the commit, jwks.json is read again: if another writer replaced it since this set
 * was computed, StoreError('conflict') is thrown and nothing is committed, so an older view of CM
 * never overwrites a newer one (short of a race within that last read and the rename).
 */
export async function writeKeySet(store: KeySetStore, plan: KeySetWrite): Promise<WriteReport> {
  const { keys, setBytes, sourcesBytes, current, maxBytes } = plan;
  const written: ObjectName[] = [];
  const replacedPrivate: ObjectName[] = [];
  for (const key of keys) {
    const name = keyObjectName(key.kid);
    const bytes = serializeKey(key);
    const stored = await storedAs(store, name, bytes, maxBytes);
    if (stored === 'same') continue;
    await store.write(name, bytes);
    written.push(name);
    if (stored === 'private') replacedPrivate.push(name);
  }
  if (current.bytes === undefined || !current.bytes.equals(setBytes)) {
    const now = await store.read(KEY_SET_OBJECT, { maxBytes });
    const stored = now.kind === 'found' ? now.object.body : undefined;
    if (!sameBytes(stored, current.bytes)) throw new StoreError('conflict', 'jwks.json was replaced by another writer during this publication');
    await store.write(KEY_SET_OBJECT, setBytes);
    written.push(KEY_SET_OBJECT);
  }
  if (current.sourcesBytes === undefined || !current.sourcesBytes.equals(sourcesBytes)) {
    await store.write(SOURCES_OBJECT, sourcesBytes);
    written.push(SOURCES_OBJECT);
  }

  const keep = new Set(keys.map((key) => keyObjectName(key.kid)));
  const stale = (await store.list()).filter((name) => name !== KEY_SET_OBJECT && name !== SOURCES_OBJECT && !keep.has(name));
  if (stale.length === 0) return { written, removed: [], replacedPrivate };
  const listedNow = await kidsListedInStore(store, maxBytes);
  if (listedNow === undefined) return { written, removed: [], replacedPrivate };
  const removed: ObjectName[] = [];
  for (const name of stale) {
    if (listedNow.has(name)) continue;
    await store.remove(name);
    removed.push(name);
  }
  return { written, removed, replacedPrivate };
}

/** What the store holds under `name`: these bytes, private key material, or anything else (absent included). */
async function storedAs(store: KeySetStore, name: ObjectName, bytes: Buffer, maxBytes: number): Promise<'same' | 'private' | 'other'> {
  const existing = await store.read(name, { maxBytes });
  if (existing.kind !== 'found') return 'other';
  if (existing.object.body.equals(bytes)) return 'same';
  try {
    validateSingleJwk(existing.object.body);
  } catch (error) {
    if (error instanceof KeySetRefusedError && error.security) return 'private';
  }
  return 'other';
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
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
