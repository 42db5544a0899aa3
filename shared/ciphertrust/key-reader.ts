import { mapConcurrently } from '../util/map-concurrently.js';
import { CipherTrustError } from './errors.js';
import { matchesLabelSelector } from './label-selector.js';
import type { CipherTrustClient } from './client.js';
import { parseCmKey, type CmKey } from './cm-key.js';
import { parsePublicPem } from './public-pem.js';

export interface KeyReaderOptions {
  /** CM label selector, e.g. `jwks=publish`. */
  readonly selector: string;
  readonly pageSize: number;
  /** Parallel GETs for public keys. */
  readonly concurrency: number;
  /**
   * Waits before asking again for a listed key whose GET answered 404 (default 300 ms, then 700 ms).
   * In a CM cluster the node answering the GET may not have replicated the key yet.
   */
  readonly notFoundRetryDelaysMs?: readonly number[];
  /** Injected so tests do not wait. */
  readonly sleep?: (ms: number) => Promise<void>;
}

const NOT_FOUND_RETRY_DELAYS_MS = [300, 700];

export interface MalformedResource {
  readonly id: string | undefined;
  readonly problem: string;
}

export interface KeyReadResult {
  /** Every well-formed resource, with `publickey` filled in for key pairs. */
  readonly keys: readonly CmKey[];
  /** Resources we could not read; each is skipped, the rest still publish. */
  readonly malformed: readonly MalformedResource[];
  /** Listed resources whose labels do not match the selector: CM did not filter as asked. */
  readonly outsideSelector: readonly { readonly id: string; readonly name: string }[];
  /** GET /vault/keys2/{id} calls made by this read. */
  readonly fetched: number;
}

interface CachedPublicKey {
  readonly version: number;
  readonly updatedAt: string;
  readonly key: CmKey;
}

/**
 * Reads the candidate keys from CM: one listing by label selector, then the public key of each key
 * pair the listing did not include. A key whose id, version and updatedAt are unchanged since the
 * last read is not fetched again (a rotation or state change moves updatedAt), unless its public
 * key did not parse last time.
 */
export class CipherTrustKeyReader {
  private cache = new Map<string, CachedPublicKey>();

  constructor(
    private readonly client: Pick<CipherTrustClient, 'listKeys' | 'getKey'>,
    private readonly options: KeyReaderOptions,
  ) {}

  async read(): Promise<KeyReadResult> {
    const listed = await this.client.listKeys(this.options.selector, this.options.pageSize);
    const malformed: MalformedResource[] = [];
    const outsideSelector: { id: string; name: string }[] = [];
    const keys: CmKey[] = [];
    for (const resource of listed) {
      const parsed = parseCmKey(resource);
      if (!parsed.ok) malformed.push({ id: parsed.id, problem: parsed.problem });
      else if (!matchesLabelSelector(parsed.key.labels, this.options.selector)) outsideSelector.push({ id: parsed.key.id, name: parsed.key.name });
      else keys.push(parsed.key);
    }
    const nextCache = new Map<string, CachedPublicKey>();
    let fetched = 0;
    const completed = await mapConcurrently(keys, this.options.concurrency, async (key) => {
      if (!needsPublicKey(key)) return key;
      const cached = this.cache.get(key.id);
      if (cached !== undefined && cached.version === key.version && cached.updatedAt === key.updatedAt) {
        nextCache.set(key.id, cached);
        return { ...key, publickey: cached.key.publickey, material: cached.key.material };
      }
      fetched++;
      const resource = await this.getListedKey(key.id);
      const parsed = resource === NOT_FOUND ? undefined : parseCmKey(resource);
      if (parsed === undefined || !parsed.ok || parsed.key.id !== key.id) {
        const problem = parsed === undefined ? 'listed, but its GET kept answering 404 (not replicated to that node yet, or deleted since)' : parsed.ok ? 'GET answered another key' : parsed.problem;
        malformed.push({ id: key.id, problem });
        // The listing still vouches for the key: it goes on as listed, without a public key, so
        // the policy keeps it as published if it is (one bad answer, or a 404 from a node that
        // lags behind the one that listed it, never withdraws a live key) and skips it otherwise.
        // Only a listing without it removes it. Nothing is cached: the next cycle asks again.
        return key;
      }
      // The single-key answer is the fresher view (the key may have changed since the listing).
      // A public key that does not parse is not kept: the next cycle asks again.
      const pem = parsed.key.publickey;
      if (pem === undefined || parsePublicPem(pem).ok) {
        nextCache.set(key.id, { version: parsed.key.version, updatedAt: parsed.key.updatedAt, key: parsed.key });
      }
      return parsed.key;
    });
    // Only keys still listed stay cached, so the cache never outgrows CM's content.
    this.cache = nextCache;
    return { keys: completed, malformed, outsideSelector, fetched };
  }

  /**
   * GET of a key just listed. A 404 is asked again after a short wait: in a CM cluster the node
   * answering may lag behind the one that listed the key (after a failover between the two, or
   * behind a load balancer, which may also send the next try elsewhere). The next try takes the
   * transport's usual order rather than another node on purpose: whether nodes honour each
   * other's JWTs is unknown, and hopping nodes could cost a login per hop. Any other failure fails
   * the read, as before.
   */
  private async getListedKey(id: string): Promise<unknown> {
    const delays = this.options.notFoundRetryDelaysMs ?? NOT_FOUND_RETRY_DELAYS_MS;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.client.getKey(id);
      } catch (error) {
        if (!(error instanceof CipherTrustError && error.details.status === 404)) throw error;
        const delay = delays[attempt];
        if (delay === undefined) return NOT_FOUND;
        await sleep(delay);
      }
    }
  }
}

/** A listed key whose GET kept answering 404. */
const NOT_FOUND = Symbol('not found');

/**
 * Asymmetric keys whose listing lacks the public half: key pairs, and Public Key objects (never
 * published, but a compromised twin must withhold its pair). Destroyed keys may have none left.
 * Certificate objects whose listing lacks their certificate.
 */
function needsPublicKey(key: CmKey): boolean {
  // A Certificate object (labelled like the keys) is read for its certificate, in `material`.
  if (key.objectType.toLowerCase() === 'certificate') return key.material === undefined;
  if (key.publickey !== undefined) return false;
  return ['private key', 'public key'].includes(key.objectType.toLowerCase()) && ['rsa', 'ec'].includes(key.algorithm.toLowerCase());
}
