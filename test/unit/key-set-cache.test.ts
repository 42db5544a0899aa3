import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeKey } from '../../shared/jwks/serialize.js';
import { publicKeyObject, type PublicJwk } from '../../shared/jwks/validate.js';
import type { KeySetCacheEvents, StoreProblem } from '../../shared/serving/metrics-port.js';
import { KeySetCache } from '../../shared/serving/key-set-cache.js';
import { RevalidationLoop, type LoopTimer } from '../../shared/serving/revalidation-loop.js';
import { KEY_SET_OBJECT, StoreError, keyObjectName, type KeySetStore, type ObjectName, type ReadOptions, type ReadResult } from '../../shared/store/store.js';
import { openBackend, publish, type TestBackend } from '../support/backends.js';
import { capturingLogger } from '../support/capture.js';
import { certificateFor, derOf, testAuthority } from '../support/certificates.js';
import { ecKey, privateJwk, rsaKey, type TestKey } from '../support/keys.js';

/** Counts what the cache reports, as the Prometheus metrics would. */
class RecordedEvents implements KeySetCacheEvents {
  reads: string[] = [];
  errors: StoreProblem[] = [];
  refusals: string[] = [];
  storeRead(object: 'set' | 'key', result: string): void {
    this.reads.push(`${object}:${result}`);
  }
  storeError(problem: StoreProblem): void {
    this.errors.push(problem);
  }
  setRefused(reason: string): void {
    this.refusals.push(reason);
  }
  checkSucceeded(): void {}
  count(read: string): number {
    return this.reads.filter((entry) => entry === read).length;
  }
}

/** A real file store that can be told to fail, as an unreachable NFS server or bucket would. */
class SwitchableStore implements KeySetStore {
  failing = false;
  constructor(private readonly inner: KeySetStore) {}
  get location(): string {
    return this.inner.location;
  }
  read(name: ObjectName, options: ReadOptions): Promise<ReadResult> {
    if (this.failing) return Promise.reject(new StoreError('unavailable', 'cannot stat the store: EIO'));
    return this.inner.read(name, options);
  }
  write(name: ObjectName, body: Buffer): Promise<void> {
    return this.inner.write(name, body);
  }
  remove(name: ObjectName): Promise<void> {
    return this.inner.remove(name);
  }
  list(): Promise<ObjectName[]> {
    return this.inner.list();
  }
}

let one: TestKey;
let two: TestKey;
let three: TestKey;
beforeAll(async () => {
  [one, two, three] = await Promise.all([rsaKey('sig'), ecKey('P-256'), rsaKey('enc')]);
});

let backend: TestBackend;
let store: SwitchableStore;
let events: RecordedEvents;
let log: ReturnType<typeof capturingLogger>;

beforeEach(async () => {
  backend = await openBackend('file');
  store = new SwitchableStore(backend.store);
  events = new RecordedEvents();
  log = capturingLogger();
});
afterEach(() => backend.close());

function cache(loadKeyFiles = false): KeySetCache {
  return new KeySetCache({ store, logger: log.logger, events, maxSetBytes: 1024 * 1024, loadKeyFiles });
}

describe('KeySetCache', () => {
  it('has nothing to serve until a set exists, and says why', async () => {
    const subject = cache();
    await subject.refresh();
    expect(subject.current()).toBeUndefined();
    expect(subject.status().problem).toMatchObject({ kind: 'store', reason: 'missing' });
  });

  it('serves the stored bytes with an ETag derived from them alone', async () => {
    const body = await publish(store, [one.jwk, two.jwk]);
    const subject = cache();
    await subject.refresh();
    const snapshot = subject.current()!;
    expect(snapshot.set.bytes.equals(body)).toBe(true);
    expect(snapshot.set.etag).toBe(`"${createHash('sha256').update(body).digest('base64url')}"`);
    expect(snapshot.keyCount).toBe(2);
    expect(subject.status().problem).toBeUndefined();
  });

  it('does not read the set again while it is unchanged', async () => {
    await publish(store, [one.jwk]);
    const subject = cache();
    await subject.refresh();
    const first = subject.current();
    await subject.refresh();
    await subject.refresh();
    expect(events.count('set:found')).toBe(1);
    expect(events.count('set:unchanged')).toBe(2);
    expect(subject.current()).toBe(first);
  });

  it('picks up a new set and swaps it whole', async () => {
    await publish(store, [one.jwk]);
    const subject = cache(true);
    await subject.refresh();
    await publish(store, [two.jwk, three.jwk]);
    await subject.refresh();
    const snapshot = subject.current()!;
    expect([...snapshot.keys.keys()].sort()).toEqual([two.jwk.kid, three.jwk.kid].sort());
    expect(snapshot.keyCount).toBe(2);
  });

  it('keeps the last good set when the file turns corrupt, counts it once, and serves the repaired file', async () => {
    await publish(store, [one.jwk, two.jwk]);
    const subject = cache();
    await subject.refresh();
    const good = subject.current();
    await writeFile(join(backend.directory!, 'jwks.json'), '{"keys":[{"kty":"RSA","n":"');
    await subject.refresh();
    await subject.refresh();
    expect(subject.current()).toBe(good);
    expect(subject.status().problem).toMatchObject({ kind: 'refused', reason: 'malformed_json' });
    expect(events.refusals).toEqual(['malformed_json']);
    expect(log.lines().filter((line) => line.event === 'key_set_refused')).toHaveLength(1);
    // Unparseable bytes may be a torn read: they are read again, not remembered as final.
    expect(events.count('set:found')).toBe(3);
    await publish(store, [one.jwk, two.jwk, three.jwk]);
    await subject.refresh();
    expect(subject.current()?.keyCount).toBe(3);
    expect(subject.status().problem).toBeUndefined();
  });

  it('reads a complete but invalid set once, and does not log it again', async () => {
    await publish(store, [one.jwk]);
    const subject = cache();
    await subject.refresh();
    await store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify({ keys: [one.jwk, one.jwk] })));
    await subject.refresh();
    await subject.refresh();
    await subject.refresh();
    expect(events.count('set:found')).toBe(2);
    expect(events.count('set:unchanged')).toBe(2);
    expect(events.refusals).toEqual(['duplicate_kid']);
    expect(subject.status().problem).toMatchObject({ kind: 'refused', reason: 'duplicate_kid' });
    expect(subject.current()?.keyCount).toBe(1);
  });

  it('refuses a set holding private material with a security event that does not hold the secret', async () => {
    await publish(store, [one.jwk]);
    const subject = cache();
    await subject.refresh();
    const good = subject.current();
    const leaked = privateJwk(two);
    await store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify({ keys: [one.jwk, leaked] })));
    await subject.refresh();
    expect(subject.current()).toBe(good);
    expect(events.refusals).toEqual(['private_key_material']);
    const security = log.lines().filter((line) => line.event === 'security');
    expect(security).toHaveLength(1);
    expect(security[0]).toMatchObject({ securityEvent: 'private_key_material_in_store', level: 'error', object: 'jwks.json' });
    expect(log.text()).not.toContain(String(leaked.d));
  });

  it('keeps serving through a store outage, logs it once, and recovers', async () => {
    await publish(store, [one.jwk]);
    const subject = cache();
    await subject.refresh();
    const good = subject.current();
    store.failing = true;
    await subject.refresh();
    await subject.refresh();
    expect(subject.current()).toBe(good);
    expect(subject.status().problem).toMatchObject({ kind: 'store', reason: 'unavailable' });
    expect(events.errors).toEqual(['unavailable', 'unavailable']);
    expect(log.lines().filter((line) => line.event === 'store_error')).toHaveLength(1);

    store.failing = false;
    await publish(store, [one.jwk, two.jwk]);
    await subject.refresh();
    expect(subject.current()?.keyCount).toBe(2);
    expect(subject.status().problem).toBeUndefined();
    expect(log.lines().some((line) => line.event === 'store_recovered')).toBe(true);
  });

  it('keeps serving when jwks.json disappears', async () => {
    await publish(store, [one.jwk]);
    const subject = cache();
    await subject.refresh();
    await store.remove(KEY_SET_OBJECT);
    await subject.refresh();
    expect(subject.current()?.keyCount).toBe(1);
    expect(subject.status().problem?.reason).toBe('missing');
  });

  describe('single keys (jwk-get)', () => {
    it('serves each key from its own file', async () => {
      await publish(store, [one.jwk, two.jwk]);
      const subject = cache(true);
      await subject.refresh();
      expect(subject.current()!.keys.get(two.jwk.kid)!.bytes.equals(serializeKey(two.jwk))).toBe(true);
      expect(events.count('key:found')).toBe(2);
    });

    it('does not re-read the file of a key that did not change between sets', async () => {
      await publish(store, [one.jwk, two.jwk]);
      const subject = cache(true);
      await subject.refresh();
      await publish(store, [one.jwk, two.jwk, three.jwk]);
      await subject.refresh();
      expect(events.count('key:found')).toBe(3);
    });

    it('serves the key as jwks.json has it when its file is missing or disagrees', async () => {
      await publish(store, [one.jwk, two.jwk]);
      await store.remove(keyObjectName(one.jwk.kid));
      await store.write(keyObjectName(two.jwk.kid), serializeKey({ ...two.jwk, alg: 'ES384' }));
      const subject = cache(true);
      await subject.refresh();
      const keys = subject.current()!.keys;
      expect(JSON.parse(keys.get(one.jwk.kid)!.bytes.toString())).toEqual(JSON.parse(serializeKey(one.jwk).toString()));
      expect((JSON.parse(keys.get(two.jwk.kid)!.bytes.toString()) as { alg: string }).alg).toBe('ES256');
      expect(events.errors.sort()).toEqual(['key_file_mismatch', 'key_file_missing']);
    });

    it('never serves a per-key file holding private material', async () => {
      await publish(store, [two.jwk]);
      const leaked = privateJwk(two);
      await store.write(keyObjectName(two.jwk.kid), Buffer.from(JSON.stringify(leaked)));
      const subject = cache(true);
      await subject.refresh();
      expect(subject.current()!.keys.get(two.jwk.kid)!.bytes.toString()).not.toContain(String(leaked.d));
      expect(log.lines().some((line) => line.event === 'security')).toBe(true);
    });

    it('keeps the last good snapshot when a key file cannot be read', async () => {
      await publish(store, [one.jwk]);
      const subject = cache(true);
      await subject.refresh();
      const good = subject.current();
      await publish(store, [one.jwk, two.jwk]);
      const read = store.read.bind(store);
      store.read = (name, options) => (name === KEY_SET_OBJECT ? read(name, options) : Promise.reject(new StoreError('timeout', 'slow')));
      await subject.refresh();
      expect(subject.current()).toBe(good);
      store.read = read;
      await subject.refresh();
      expect(subject.current()?.keyCount).toBe(2);
    });
  });
});

describe('RevalidationLoop', () => {
  /** A timer that runs scheduled callbacks only when told to. */
  class ManualTimer implements LoopTimer {
    scheduled: { callback: () => void; delayMs: number; cancelled: boolean }[] = [];
    schedule(callback: () => void, delayMs: number) {
      const entry = { callback, delayMs, cancelled: false };
      this.scheduled.push(entry);
      return { cancel: () => void (entry.cancelled = true) };
    }
    async fire(): Promise<void> {
      const entry = this.scheduled.shift();
      if (entry && !entry.cancelled) entry.callback();
      await new Promise((done) => setImmediate(done));
    }
  }

  it('checks at start, then once per interval after each check ends', async () => {
    const timer = new ManualTimer();
    let checks = 0;
    const loop = new RevalidationLoop(() => Promise.resolve(void checks++), 250, () => undefined, timer);
    await loop.start();
    expect(checks).toBe(1);
    expect(timer.scheduled.map((entry) => entry.delayMs)).toEqual([250]);
    await timer.fire();
    await timer.fire();
    expect(checks).toBe(3);
    loop.stop();
    await timer.fire();
    expect(checks).toBe(3);
  });

  it('reports a check that throws and keeps going', async () => {
    const timer = new ManualTimer();
    const errors: unknown[] = [];
    let checks = 0;
    const loop = new RevalidationLoop(
      () => (++checks === 1 ? Promise.reject(new Error('boom')) : Promise.resolve()),
      10,
      (error) => errors.push(error),
      timer,
    );
    await loop.start();
    await timer.fire();
    expect(checks).toBe(2);
    expect(errors).toEqual([new Error('boom')]);
    loop.stop();
  });
});

describe('KeySetCache and certificates in the store', () => {
  let ca: Awaited<ReturnType<typeof testAuthority>>;
  let planted: PublicJwk;
  let genuine: PublicJwk;
  beforeAll(async () => {
    ca = await testAuthority();
    // A certificate issued by the bank's CA, but for another key than the one it is planted on.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const foreign = await certificateFor(ca, other);
    const own = await certificateFor(ca, publicKeyObject(one.jwk));
    const chain = (leaf: string) => ({ x5c: [derOf(leaf), derOf(ca.issuingPem)], 'x5t#S256': createHash('sha256').update(Buffer.from(derOf(leaf), 'base64')).digest('base64url') });
    planted = { ...one.jwk, ...chain(foreign) };
    genuine = { ...one.jwk, ...chain(own) };
  }, 60_000);
  afterAll(() => ca.remove());

  it('serves a stored set whose keys carry their own certificates', async () => {
    await publish(store, [genuine, two.jwk]);
    const subject = cache(true);
    await subject.refresh();
    expect(subject.current()?.keys.get(one.jwk.kid)).toBeDefined();
    expect(subject.status().problem).toBeUndefined();
  });

  it('refuses a stored set with a planted certificate, as a security event, and keeps serving the last good set', async () => {
    await publish(store, [one.jwk]);
    const subject = cache();
    await subject.refresh();
    const good = subject.current();
    await store.write(KEY_SET_OBJECT, Buffer.from(JSON.stringify({ keys: [planted] })));
    await subject.refresh();
    expect(subject.current()).toBe(good);
    expect(events.refusals).toEqual(['certificate_mismatch']);
    expect(log.lines().find((line) => line.event === 'security')).toMatchObject({ securityEvent: 'certificate_mismatch_in_store', reason: 'certificate_mismatch' });
    expect(subject.current()?.set.bytes.toString()).not.toContain('x5c');
  });

  it('never serves a per-key file holding a planted certificate: the key goes out as jwks.json lists it', async () => {
    await publish(store, [one.jwk]);
    await store.write(keyObjectName(one.jwk.kid), Buffer.from(JSON.stringify(planted)));
    const subject = cache(true);
    await subject.refresh();
    const served = subject.current()?.keys.get(one.jwk.kid);
    expect(served?.bytes.toString()).not.toContain('x5c');
    expect(events.refusals).toEqual(['certificate_mismatch']);
  });
});
