import { KeySetRefusedError } from '../../shared/jwks/errors.js';
import { validateKeySet, validateSingleJwk, type PublicJwk } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT, SOURCES_OBJECT, keyObjectName, type KeySetStore, type ObjectName } from '../../shared/store/store.js';

const MAX_BYTES = 4 * 1024 * 1024;

/** What a quiescent store holds, once checked. */
export interface StoreView {
  readonly setBytes: Buffer | undefined;
  readonly kids: readonly string[];
  readonly objects: readonly ObjectName[];
  /** Every object's bytes, to compare whole stores. */
  readonly bytes: ReadonlyMap<ObjectName, Buffer>;
}

/** Members sorted by name: two JWKs are the same key when this is equal. */
export function canonicalJwk(key: PublicJwk | Record<string, unknown>): string {
  return JSON.stringify(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Reads a store nobody is writing and lists every way it breaks what the serving side relies on:
 * jwks.json is a valid public set; each kid it lists has its jwk-<kid>.json, equal to its member;
 * every other object the store names is complete (a per-kid file nobody lists must still be a
 * whole, public key; jwks-sources.json whole JSON). [] means consistent.
 */
export async function storeProblems(store: KeySetStore): Promise<{ problems: string[]; view: StoreView }> {
  const problems: string[] = [];
  const objects = await store.list();
  const bytes = new Map<ObjectName, Buffer>();
  for (const name of objects) {
    const result = await store.read(name, { maxBytes: MAX_BYTES });
    if (result.kind === 'found') bytes.set(name, result.object.body);
    else problems.push(`${name} is listed but reads as ${result.kind}`);
  }
  const setBytes = bytes.get(KEY_SET_OBJECT);
  let keys: readonly PublicJwk[] = [];
  if (setBytes === undefined) {
    problems.push('jwks.json is missing');
  } else {
    try {
      keys = validateKeySet(setBytes).keys;
    } catch (error) {
      problems.push(`jwks.json is refused: ${reasonOf(error)}`);
    }
  }
  const listed = new Set<ObjectName>();
  for (const key of keys) {
    const name = keyObjectName(key.kid);
    listed.add(name);
    const file = bytes.get(name);
    if (file === undefined) {
      problems.push(`jwks.json lists ${key.kid} but ${name} is missing`);
      continue;
    }
    try {
      if (canonicalJwk(validateSingleJwk(file)) !== canonicalJwk(key)) problems.push(`${name} differs from its member in jwks.json`);
    } catch (error) {
      problems.push(`${name} is refused: ${reasonOf(error)}`);
    }
  }
  for (const [name, file] of bytes) {
    if (name === KEY_SET_OBJECT || listed.has(name)) continue;
    try {
      if (name === SOURCES_OBJECT) JSON.parse(file.toString('utf8'));
      else validateSingleJwk(file);
    } catch (error) {
      problems.push(`${name} (not listed) is not complete: ${reasonOf(error)}`);
    }
  }
  return { problems, view: { setBytes, kids: keys.map((key) => key.kid).sort(), objects, bytes } };
}

function reasonOf(error: unknown): string {
  if (error instanceof KeySetRefusedError) return `${error.reason}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
