/**
 * Listings and key states as CipherTrust Manager returns them, through the real client, reader,
 * policy and cycle over HTTPS to the CM emulator, written to a real file store: an empty listing
 * as `resources: null`, CM's `messages` about parameters it did not understand, keys addressed by
 * `type=id`, the protect-stop state in each spelling it may have, and a state nobody knows yet.
 * One emulator and one clock (CM's and the cycle's); each test lists only its own keys (a label).
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { PROTECT_STOP_STATE, type CmKeyResource, type CreateKeyInput } from '../../emulator/index.js';
import { CipherTrustClient } from '../../shared/ciphertrust/client.js';
import { CipherTrustKeyReader } from '../../shared/ciphertrust/key-reader.js';
import { CipherTrustSession } from '../../shared/ciphertrust/session.js';
import { CipherTrustTransport } from '../../shared/ciphertrust/transport.js';
import { PublisherMetrics } from '../../shared/observability/publisher-metrics.js';
import { PublicationCycle } from '../../shared/publisher/publication-cycle.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { capturingLogger } from '../support/capture.js';
import { metricValue } from '../support/http.js';
import { ManualClock, startTestEmulator, type TestEmulator } from '../emulator/support.js';

const SIGN = 1 | 2;
const ENCRYPT = 4 | 8;
const HOUR_S = 3600;
const RETAIN_S = 24 * HOUR_S;
const MAX_BYTES = 1024 * 1024;

describe('CM keys and states, through the real client against the emulator', () => {
  const clock = new ManualClock(new Date());
  let emulator: TestEmulator;
  const cleanups: (() => Promise<void>)[] = [];
  let suites = 0;

  beforeAll(async () => {
    emulator = await startTestEmulator({ now: clock.now });
  });
  afterEach(async () => {
    emulator.faults.clear();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  afterAll(() => emulator.stop());

  /** A publisher of its own (store, metrics, log) over the keys labelled for this test only. */
  async function publisher(options: { pageSize?: number } = {}) {
    const suite = `s${++suites}`;
    const directory = await mkdtemp(join(tmpdir(), 'cm-keys-'));
    const transport = new CipherTrustTransport({
      nodes: [emulator.url],
      caPem: emulator.caPem,
      clientCertPem: undefined,
      clientKeyPem: undefined,
      timeoutMs: 5000,
      retry: { maxAttempts: 2, budgetMs: 5000, baseDelayMs: 10, maxDelayMs: 50 },
      maxSockets: 4,
    });
    cleanups.push(async () => {
      transport.close();
      await rm(directory, { recursive: true, force: true });
    });
    const log = capturingLogger('key-rotated');
    const session = new CipherTrustSession(transport, { type: 'password', username: 'admin', password: 'admin' }, undefined);
    const client = new CipherTrustClient(transport, session, log.logger);
    const reader = new CipherTrustKeyReader(client, { selector: `jwks=publish,suite=${suite}`, pageSize: options.pageSize ?? 10, concurrency: 2 });
    const metrics = new PublisherMetrics({ defaultMetrics: false });
    const store = new FileKeySetStore(directory);
    const cycle = new PublicationCycle({ reader, store, logger: log.logger, observer: metrics, retainDeactivatedMs: RETAIN_S * 1000, allowEmpty: false, maxSetBytes: MAX_BYTES, maxKeys: 20, now: clock.now });
    return {
      log,
      run: () => cycle.run([{ kind: 'ping' }]),
      create: (name: string, input: Omit<CreateKeyInput, 'name'>): CmKeyResource =>
        emulator.keys.create({ name: `${suite}-${name}`, ...input, labels: { jwks: 'publish', suite, ...input.labels } }),
      published: async (): Promise<string[]> => {
        const read = await store.read(KEY_SET_OBJECT, { maxBytes: MAX_BYTES });
        return read.kind === 'found' ? (JSON.parse(read.object.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort() : [];
      },
      metric: async (series: string): Promise<number> => metricValue(await metrics.registry.metrics(), series),
      events: (event: string): Record<string, unknown>[] => log.lines().filter((line) => line.event === event),
    };
  }

  async function kidOf(key: CmKeyResource): Promise<string> {
    const pem = emulator.keys.get(key.id)?.publickey;
    if (pem === undefined) throw new Error(`no public key for ${key.id}`);
    return calculateJwkThumbprint(createPublicKey(pem).export({ format: 'jwk' }));
  }

  const ec = (usageMask = SIGN): Omit<CreateKeyInput, 'name'> => ({ algorithm: 'ec', curveid: 'prime256v1', usageMask });

  describe('listings', () => {
    test.each(['null', 'array'] as const)('an empty listing (resources %s, total 0) is an empty set for the empty-set guard, not a malformed answer', async (shape) => {
      emulator.faults.setListingShape({ emptyResources: shape });
      const { run, published } = await publisher();
      const result = await run();
      expect(result).toMatchObject({ outcome: 'refused', guard: { guard: 'empty_set' } });
      expect(await published()).toEqual([]);
    });

    test('a page past the end answered null while keys leave is read again, not a failure', async () => {
      const { run, create, published } = await publisher({ pageSize: 2 });
      const keys = ['a', 'b', 'c', 'd'].map((name) => create(name, ec()));
      let removed = false;
      emulator.faults.onRequest((request) => {
        if (removed || request.endpoint !== 'list' || request.query.skip !== '2') return;
        removed = true;
        for (const key of keys.slice(1)) emulator.keys.remove(key.id);
      });
      expect(await run()).toMatchObject({ outcome: 'published', keys: 1 });
      expect(await published()).toEqual([await kidOf(keys[0]!)]);
    });

    test("CM's messages about parameters it did not understand are logged once each, and the listing is still filtered by labels", async () => {
      emulator.faults.setListingShape({ ignoredParameters: ['labels'] });
      const { run, create, published, events } = await publisher();
      const key = create('only', ec());
      expect(await run()).toMatchObject({ outcome: 'published', keys: 1 });
      expect(await run()).toMatchObject({ outcome: 'unchanged' });
      expect(await published()).toEqual([await kidOf(key)]);
      expect(events('ciphertrust_query_not_understood')).toEqual([
        expect.objectContaining({ level: 'warn', endpoint: 'keys2_list', cmMessage: 'Unknown query parameter: labels' }) as unknown,
      ]);
      expect(events('selector_not_applied')).toHaveLength(2);
    });

    test('a key is read with type=id, so a key named like its id never stands in for it', async () => {
      const { run, create, published } = await publisher();
      const key = create('real', ec());
      const impostor = emulator.keys.create({ name: key.id, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN });
      emulator.clearRequests();
      expect(await run()).toMatchObject({ outcome: 'published', keys: 1 });
      expect(await published()).toEqual([await kidOf(key)]);
      expect(await published()).not.toContain(await kidOf(impostor));
      expect(emulator.requests.filter((request) => request.endpoint === 'get').map((request) => request.query)).toEqual([{ type: 'id' }]);
    });
  });

  describe('protect-stop', () => {
    // No public source shows CM's spelling (L): every candidate, and variants of case and separators.
    test.each(['Active Protect Stop', 'ActiveProtectStop', 'Protect Stop', 'ProtectStop', 'active-protect-stop', 'PROTECT_STOP'])(
      'spelled "%s": a signing key stays published for the retention after it stopped protecting; an encryption key goes at once',
      async (spelling) => {
        emulator.faults.spellState(PROTECT_STOP_STATE, spelling);
        const { run, create, published } = await publisher();
        const signing = create('sig', ec());
        const encryption = create('enc', ec(ENCRYPT));
        const anchor = create('anchor', ec());
        expect(await run()).toMatchObject({ outcome: 'published', keys: 3 });

        // Into protect-stop the way CM's rotation scheduler leaves a replaced key (ProtectStop).
        for (const key of [signing, encryption]) emulator.keys.reactivate(emulator.keys.revoke(key.id, 'Superseded').id, 'DeactivatedToActiveProtectStop');
        expect(emulator.keys.get(signing.id)?.state).toBe(spelling);
        expect(await run()).toMatchObject({ outcome: 'published', removed: [{ kid: await kidOf(encryption) }] });
        expect(await published()).toEqual([await kidOf(signing), await kidOf(anchor)].sort());

        clock.advance(RETAIN_S - 1);
        expect(await run()).toMatchObject({ outcome: 'unchanged' });
        clock.advance(1);
        expect(await run()).toMatchObject({ outcome: 'published', removed: [{ kid: await kidOf(signing), cmKey: { state: spelling } }] });
        expect(await published()).toEqual([await kidOf(anchor)]);
      },
    );

    test('entered by its protectStopDate, retention counts from that date', async () => {
      const { run, create, published } = await publisher();
      const signing = create('dated', ec());
      const anchor = create('anchor', ec());
      emulator.keys.patch(signing.id, { protectStopDate: clock.iso(60) });
      expect(await run()).toMatchObject({ outcome: 'published', keys: 2 });
      clock.advance(HOUR_S);
      expect(emulator.keys.get(signing.id)?.state).toBe(PROTECT_STOP_STATE);
      expect(await run()).toMatchObject({ outcome: 'unchanged' });
      // The date passed an hour ago: the retention ends an hour earlier than from now.
      clock.advance(RETAIN_S - HOUR_S + 59);
      expect(await run()).toMatchObject({ outcome: 'unchanged' });
      clock.advance(2);
      expect(await run()).toMatchObject({ outcome: 'published', keys: 1 });
      expect(await published()).toEqual([await kidOf(anchor)]);
    });
  });

  describe('a state nobody here knows', () => {
    test('a published key stays published, with a security log line, the metric and the audit, until CM moves it back; a new key in it is not added', async () => {
      const { run, create, published, metric, events, log } = await publisher();
      const suspended = create('suspended', ec());
      const others = [create('b', ec()), create('c', ec(ENCRYPT))];
      expect(await run()).toMatchObject({ outcome: 'published', keys: 3 });
      const before = await published();

      emulator.faults.forceState(suspended.id, 'Suspended');
      const newcomer = create('newcomer', ec());
      emulator.faults.forceState(newcomer.id, 'Escrowed');
      expect(await run()).toMatchObject({ outcome: 'unchanged', keys: 3, keptUnknownState: [await kidOf(suspended)] });
      expect(await published()).toEqual(before);
      expect(await published()).not.toContain(await kidOf(newcomer));
      expect(events('key_kept_unknown_state')).toEqual([
        expect.objectContaining({ level: 'warn', security: true, kid: await kidOf(suspended), cmKey: expect.objectContaining({ id: suspended.id, state: 'Suspended' }) as unknown }) as unknown,
      ]);
      expect(events('key_skipped').filter((line) => line.reason === 'unknown_state').map((line) => (line.cmKey as { id: string }).id)).toEqual([newcomer.id]);
      expect(await metric('jwks_publisher_keys_kept_unknown_state')).toBe(1);
      expect(log.lines().find((line) => line.audit === true && line.keptUnknownState !== undefined)).toMatchObject({ keptUnknownState: [await kidOf(suspended)] });

      emulator.faults.clear();
      expect(await run()).toMatchObject({ outcome: 'published', keys: 4 });
      expect(await metric('jwks_publisher_keys_kept_unknown_state')).toBe(0);
      expect(others).toHaveLength(2);
    });

    test('Compromised in any spelling still withdraws at once, even most of the set', async () => {
      emulator.faults.spellState('Compromised', 'COMPROMISED');
      const { run, create, published } = await publisher();
      const [first, second, kept] = [create('x', ec()), create('y', ec()), create('z', ec())];
      expect(await run()).toMatchObject({ outcome: 'published', keys: 3 });
      for (const key of [first, second]) emulator.keys.revoke(key.id, 'KeyCompromise');
      // Two of three is more than half: only a withdrawal may remove them.
      expect(await run()).toMatchObject({ outcome: 'published', keys: 1 });
      expect(await published()).toEqual([await kidOf(kept)]);
    });

    test('the known states in other spellings keep their meaning (Deactivated retained, Pre-Active published ahead)', async () => {
      emulator.faults.spellState('Deactivated', 'DEACTIVATED');
      emulator.faults.spellState('Pre-Active', 'PreActive');
      const { run, create, published } = await publisher();
      const retired = create('retired', ec());
      const anchor = create('anchor', ec());
      expect(await run()).toMatchObject({ outcome: 'published', keys: 2 });
      emulator.keys.revoke(retired.id, 'Superseded');
      const upcoming = create('upcoming', { ...ec(), state: 'Pre-Active' });
      expect(emulator.keys.get(upcoming.id)?.state).toBe('PreActive');
      expect(await run()).toMatchObject({ outcome: 'published', keys: 3 });
      expect(await published()).toEqual([await kidOf(retired), await kidOf(anchor), await kidOf(upcoming)].sort());
    });
  });
});
