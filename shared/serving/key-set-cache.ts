import { KeySetRefusedError } from '../jwks/errors.js';
import { validateKeySet, validateSingleJwk, type PublicJwk } from '../jwks/validate.js';
import type { Logger } from '../observability/logger.js';
import { KEY_SET_OBJECT, StoreError, keyObjectName, type KeySetStore } from '../store/store.js';
import type { KeySetCacheEvents, StoreProblem } from './metrics-port.js';
import { representationOf, type Representation } from './representation.js';

/** What is served, swapped as a whole: a request sees one snapshot from start to end. */
export interface KeySetSnapshot {
  readonly set: Representation;
  /** kid -> that key alone; filled only when the cache was asked to serve single keys. */
  readonly keys: ReadonlyMap<string, Representation>;
  readonly keyCount: number;
  /** Backend version of jwks.json this snapshot was read from. */
  readonly version: string;
  readonly loadedAt: Date;
}

export interface CacheProblem {
  /** `store`: the store could not be read; `refused`: it holds a set that must not be served. */
  readonly kind: 'store' | 'refused';
  readonly reason: string;
  readonly message: string;
  readonly at: Date;
}

export interface CacheStatus {
  readonly snapshot: KeySetSnapshot | undefined;
  readonly lastSuccessfulCheck: Date | undefined;
  /** The latest problem since the last successful check; undefined when healthy. */
  readonly problem: CacheProblem | undefined;
}

export interface KeySetCacheOptions {
  readonly store: KeySetStore;
  readonly logger: Logger;
  readonly events: KeySetCacheEvents;
  readonly maxSetBytes: number;
  /** jwk-get serves keys one by one from their jwk-<kid>.json files; jwks-get needs only the set. */
  readonly loadKeyFiles: boolean;
  readonly now?: () => Date;
}

interface LoadedKeys {
  readonly representations: ReadonlyMap<string, Representation>;
  readonly canonicals: ReadonlyMap<string, string>;
}

const NO_KEYS: LoadedKeys = { representations: new Map(), canonicals: new Map() };
const TORN_READ_REASONS: ReadonlySet<string> = new Set(['malformed_json', 'not_utf8']);
const MAX_KEY_FILE_BYTES = 64 * 1024;
const KEY_FILE_CONCURRENCY = 8;

/**
 * Holds the last good key set in memory and refreshes it from the store. A refresh never throws
 * and never replaces a good set with a bad one: an unreadable store, a corrupt file or a set with
 * private material leaves the current snapshot in place and is reported through status and events.
 */
export class KeySetCache {
  private snapshot: KeySetSnapshot | undefined;
  private lastSuccessfulCheck: Date | undefined;
  private problem: CacheProblem | undefined;
  /** Version last read, accepted or refused: a refused file is not re-read (or re-logged) each poll. */
  private seenVersion: string | undefined;
  /** Canonical JSON of each served key, to reuse unchanged per-kid files across set versions. */
  private canonicalByKid: ReadonlyMap<string, string> = new Map();
  private readonly now: () => Date;

  constructor(private readonly options: KeySetCacheOptions) {
    this.now = options.now ?? (() => new Date());
  }

  current(): KeySetSnapshot | undefined {
    return this.snapshot;
  }

  status(): CacheStatus {
    return { snapshot: this.snapshot, lastSuccessfulCheck: this.lastSuccessfulCheck, problem: this.problem };
  }

  async refresh(): Promise<void> {
    const { store, events, maxSetBytes } = this.options;
    let result;
    try {
      result = await store.read(KEY_SET_OBJECT, { ifChangedFrom: this.seenVersion, maxBytes: maxSetBytes });
    } catch (error) {
      events.storeRead('set', 'error');
      this.fail(error instanceof StoreError ? error.failure : 'unavailable', describe(error));
      return;
    }
    events.storeRead('set', result.kind);
    if (result.kind === 'unchanged') {
      // Still the refused file: the store is readable, but the refusal stands.
      if (this.problem?.kind === 'refused') this.markStoreReachable();
      else this.succeed();
      return;
    }
    if (result.kind === 'missing') {
      this.seenVersion = undefined;
      this.fail('missing', `${KEY_SET_OBJECT} is not in the store`);
      return;
    }
    const { body, version, lastModified } = result.object;
    let keys: readonly PublicJwk[];
    try {
      keys = validateKeySet(body).keys;
    } catch (error) {
      if (!(error instanceof KeySetRefusedError)) throw error;
      // Bytes that do not parse may be a torn read of a store that is not atomic (a foreign writer
      // in place, some S3 emulators): read them again next time. Complete but wrong sets are final.
      if (!TORN_READ_REASONS.has(error.reason)) this.seenVersion = version;
      this.refuse(error);
      return;
    }
    let perKey: LoadedKeys;
    try {
      perKey = this.options.loadKeyFiles ? await this.loadKeyFiles(keys, lastModified) : NO_KEYS;
    } catch (error) {
      // A key file that cannot be read now may be readable next poll: do not remember this version.
      this.fail(error instanceof StoreError ? error.failure : 'unavailable', describe(error));
      return;
    }
    this.seenVersion = version;
    this.canonicalByKid = perKey.canonicals;
    this.swap({
      set: representationOf(body, lastModified),
      keys: perKey.representations,
      keyCount: keys.length,
      version,
      loadedAt: this.now(),
    });
    this.succeed();
  }

  private swap(next: KeySetSnapshot): void {
    const previous = this.snapshot;
    this.snapshot = next;
    this.options.logger.info(
      { event: 'key_set_loaded', etag: next.set.etag, keys: next.keyCount, previousEtag: previous?.set.etag },
      'serving a new key set',
    );
  }

  /**
   * Per-kid files are written before jwks.json and removed after it, so each kid the set lists has
   * its file. A file that is missing or disagrees with the set is not trusted: the set is the commit
   * point, so that key is served as the set has it and the mismatch is reported.
   */
  private async loadKeyFiles(keys: readonly PublicJwk[], setModified: Date): Promise<LoadedKeys> {
    const previous = this.snapshot?.keys;
    const representations = new Map<string, Representation>();
    const canonicals = new Map<string, string>();
    const queue = [...keys];
    const worker = async (): Promise<void> => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
        const canonical = canonicalJson(key);
        canonicals.set(key.kid, canonical);
        const kept = previous?.get(key.kid);
        if (kept !== undefined && this.canonicalByKid.get(key.kid) === canonical) {
          representations.set(key.kid, kept);
        } else {
          representations.set(key.kid, await this.loadKeyFile(key, canonical, setModified));
        }
      }
    };
    await Promise.all(Array.from({ length: KEY_FILE_CONCURRENCY }, worker));
    return { representations, canonicals };
  }

  private async loadKeyFile(key: PublicJwk, canonical: string, setModified: Date): Promise<Representation> {
    const { store, events, logger } = this.options;
    const name = keyObjectName(key.kid);
    let result;
    try {
      result = await store.read(name, { maxBytes: MAX_KEY_FILE_BYTES });
    } catch (error) {
      events.storeRead('key', 'error');
      throw error;
    }
    events.storeRead('key', result.kind);
    if (result.kind === 'found') {
      try {
        if (canonicalJson(validateSingleJwk(result.object.body)) === canonical) {
          return representationOf(result.object.body, result.object.lastModified);
        }
      } catch (error) {
        if (!(error instanceof KeySetRefusedError)) throw error;
        if (error.security) {
          // Counted like a refused set, so the private-material alert sees a per-key file too.
          events.setRefused(error.reason);
          this.securityEvent(name, error);
        }
      }
    }
    const failure = result.kind === 'found' ? 'key_file_mismatch' : 'key_file_missing';
    events.storeError(failure);
    logger.warn({ event: failure, kid: key.kid, object: name }, 'per-key file missing or not matching jwks.json; serving the key as jwks.json lists it');
    return representationOf(Buffer.from(JSON.stringify(key)), setModified);
  }

  private succeed(): void {
    if (this.problem !== undefined) {
      this.options.logger.info({ event: 'store_recovered', previousProblem: this.problem.reason }, 'key set store healthy again');
    }
    this.problem = undefined;
    this.markStoreReachable();
  }

  private markStoreReachable(): void {
    const at = this.now();
    this.lastSuccessfulCheck = at;
    this.options.events.checkSucceeded(at);
  }

  private fail(reason: StoreProblem, message: string): void {
    const { events, logger } = this.options;
    events.storeError(reason);
    // One line per change of problem, not one per poll.
    if (this.problem?.reason !== reason || this.problem.message !== message) {
      logger.error(
        { event: 'store_error', reason, detail: message, serving: this.snapshot?.set.etag ?? null },
        this.snapshot ? 'cannot refresh the key set; still serving the last good set' : 'cannot load the key set; not ready',
      );
    }
    this.problem = { kind: 'store', reason, message, at: this.now() };
  }

  private refuse(error: KeySetRefusedError): void {
    const { events, logger } = this.options;
    const current = this.problem;
    if (current?.kind === 'refused' && current.reason === error.reason && current.message === error.message) {
      this.markStoreReachable();
      return; // the same document refused again: counted and logged once
    }
    events.setRefused(error.reason);
    if (error.security) {
      this.securityEvent(KEY_SET_OBJECT, error);
    } else {
      logger.error(
        { event: 'key_set_refused', reason: error.reason, detail: error.message, serving: this.snapshot?.set.etag ?? null },
        'refused the stored key set; still serving the last good set',
      );
    }
    this.problem = { kind: 'refused', reason: error.reason, message: error.message, at: this.now() };
    this.markStoreReachable();
  }

  private securityEvent(object: string, error: KeySetRefusedError): void {
    this.options.logger.error(
      {
        event: 'security',
        securityEvent: error.reason === 'private_key_material' ? 'private_key_material_in_store' : 'certificate_mismatch_in_store',
        object,
        reason: error.reason,
        detail: error.message,
        serving: this.snapshot?.set.etag ?? null,
      },
      error.reason === 'private_key_material'
        ? 'refused to serve a stored document holding private key material'
        : 'refused to serve a stored document whose certificate (x5c) does not certify its key',
    );
  }
}

/** Member order does not matter for equality; values do. */
function canonicalJson(key: PublicJwk): string {
  return JSON.stringify(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
