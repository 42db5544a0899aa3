import { isValidKid } from '../jwks/kid.js';

/**
 * The storage contract shared by the serving functions (read side) and the publisher (write side).
 * One implementation per backend: file-store.ts (PersistentVolume) and s3-store.ts (object storage).
 */

/** A name the store will accept. Only these two shapes exist, so no name can leave the store. */
export type ObjectName = string & { readonly __objectName: true };

export const KEY_SET_OBJECT = 'jwks.json' as ObjectName;
/**
 * The publisher's record of the CM keys behind each published kid (CM id, name, version; no key
 * material). Never served; it lets a later cycle recognise a published key after CM has destroyed
 * its material or answers it malformed.
 */
export const SOURCES_OBJECT = 'jwks-sources.json' as ObjectName;

export function isObjectName(name: string): name is ObjectName {
  if (name === KEY_SET_OBJECT || name === SOURCES_OBJECT) return true;
  return name.startsWith('jwk-') && name.endsWith('.json') && isValidKid(name.slice('jwk-'.length, -'.json'.length));
}

/** The per-kid file for a key. Throws on a kid that is not valid, so callers cannot build a path. */
export function keyObjectName(kid: string): ObjectName {
  if (!isValidKid(kid)) throw new TypeError('invalid kid for an object name');
  return `jwk-${kid}.json` as ObjectName;
}

export interface StoredObject {
  readonly body: Buffer;
  /** Opaque backend version (file identity and times, or the S3 ETag): equal means unchanged. */
  readonly version: string;
  readonly lastModified: Date;
}

export type ReadResult =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'missing' }
  | { readonly kind: 'found'; readonly object: StoredObject };

export interface ReadOptions {
  /** Version seen last time: the backend answers `unchanged` cheaply (stat, conditional GET). */
  readonly ifChangedFrom?: string | undefined;
  /** Larger objects are refused without being read whole. */
  readonly maxBytes: number;
}

export interface KeySetStore {
  /** Where the store is, for logs: never holds a credential. */
  readonly location: string;
  read(name: ObjectName, options: ReadOptions): Promise<ReadResult>;
  /** Replaces the object atomically: readers see the old bytes or the new ones, never a mix. */
  write(name: ObjectName, body: Buffer): Promise<void>;
  /** Removes the object; removing a missing object is not an error. */
  remove(name: ObjectName): Promise<void>;
  /** Names of the objects present that follow the naming scheme; anything else is ignored. */
  list(): Promise<ObjectName[]>;
  /** Releases connections, so a one-shot process can exit; a backend without any has none. */
  close?(): void;
}

export const STORE_FAILURES = ['unavailable', 'timeout', 'too_large', 'not_a_file', 'outside_store', 'write_failed', 'conflict'] as const;
export type StoreFailure = (typeof STORE_FAILURES)[number];

/** A storage operation that failed. The message never holds a credential. */
export class StoreError extends Error {
  override readonly name = 'StoreError';

  constructor(
    readonly failure: StoreFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function contentTypeOf(name: ObjectName): string {
  if (name === SOURCES_OBJECT) return 'application/json';
  return name === KEY_SET_OBJECT ? 'application/jwk-set+json' : 'application/jwk+json';
}
