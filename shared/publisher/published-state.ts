import { KeySetRefusedError } from '../jwks/errors.js';
import { validateKeySet, type PublicJwk } from '../jwks/validate.js';
import type { Logger } from '../observability/logger.js';
import { KEY_SET_OBJECT, SOURCES_OBJECT, type KeySetStore } from '../store/store.js';
import { kidsByCmId, parseSourceRecord } from './key-sources.js';

/** What the store holds now, as a publication cycle compares against it. */
export interface PublishedState {
  readonly kids: readonly string[];
  readonly keys: ReadonlyMap<string, PublicJwk>;
  /** jwks.json as stored (undefined when absent), to write nothing when nothing changed. */
  readonly bytes: Buffer | undefined;
  readonly sourcesBytes: Buffer | undefined;
  /** CM id -> kid recorded at publication. */
  readonly kidsByCmId: ReadonlyMap<string, string>;
}

/**
 * Reads jwks.json and jwks-sources.json. A set that is not valid is reported and treated as
 * empty, so the cycle replaces it (serving keeps its last good copy meanwhile); store failures
 * are thrown (StoreError).
 */
export async function readPublishedState(store: KeySetStore, maxBytes: number, logger: Logger): Promise<PublishedState> {
  const [set, sources] = await Promise.all([store.read(KEY_SET_OBJECT, { maxBytes }), store.read(SOURCES_OBJECT, { maxBytes })]);
  const sourcesBytes = sources.kind === 'found' ? sources.object.body : undefined;
  const recorded = kidsByCmId(sourcesBytes === undefined ? new Map() : parseSourceRecord(sourcesBytes));
  const empty: PublishedState = { kids: [], keys: new Map(), bytes: undefined, sourcesBytes, kidsByCmId: recorded };
  if (set.kind !== 'found') return empty;
  try {
    const { keys } = validateKeySet(set.object.body);
    return { ...empty, kids: keys.map((key) => key.kid), keys: new Map(keys.map((key) => [key.kid, key])), bytes: set.object.body };
  } catch (error) {
    if (!(error instanceof KeySetRefusedError)) throw error;
    // The removal guard cannot judge against a set it cannot read, so the operator is told.
    logger.warn(
      { event: 'published_set_unreadable', reason: error.reason, security: error.security, detail: error.message },
      'the published key set is not valid; it will be replaced by the one computed now',
    );
    return { ...empty, bytes: set.object.body };
  }
}
