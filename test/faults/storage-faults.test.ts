/**
 * Storage that fails under the publisher, end to end: key-rotated, jwks-get and jwk-get in their
 * own processes, CipherTrust Manager emulated, and real faults: a full tmpfs (ENOSPC), a tmpfs
 * remounted read-only (EROFS), a directory an unprivileged publisher cannot write (EACCES), and an
 * S3 server behind a proxy that answers 500/503 or nothing to PUTs.
 *
 * Each fault gets the same round: CM gains a key; during the fault a ping must fail and say so
 * (503 store_failed naming the cause, the failed-cycle counter, /readyz, the audit record); the
 * store must stay consistent (store-consistency.ts) with the old set committed; partners must get
 * the old set, 200, the whole time (fault-watch.ts); and once the fault is gone the next ping must
 * publish the new key, which the serving pair then serves.
 */
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { keyObjectName } from '../../shared/store/store.js';
import { openBackend, type TestBackend } from '../support/backends.js';
import { describeIfInstalled, itIfInstalled, unprivilegedRunMissing } from '../support/dependencies.js';
import { watchServing, type WatchReport } from '../support/fault-watch.js';
import { credentialValues, expectNoSecretsInLogs } from '../support/log-secrets.js';
import { readableBundleCopy, startFunction, type RunningFunction } from '../support/processes.js';
import { eventSender, startPublisherStack, waitForFirstCycle, type EventAnswer, type PublisherStack } from '../support/publisher-stack.js';
import { startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.js';
import { mountTmpfs, tmpfsMountMissing, type Tmpfs } from '../support/tmpfs.js';
import { ENCRYPT, PUBLISH, SIGN, expectConsistent, expectServed, publisherReport, startServing } from './support.js';

/** The unprivileged user and group a publisher meets EACCES as (nobody / nogroup). */
const NOBODY = 65534;

interface Fault {
  /** What the failure message must name (errno, S3 error code). */
  readonly cause: RegExp;
  inject(): Promise<void>;
  /** Idempotent: also runs when the round fails half-way, so later tests start clean. */
  heal(): Promise<void>;
}

interface Round {
  readonly stack: PublisherStack;
  readonly serving: Awaited<ReturnType<typeof startServing>>;
  /** The publisher to ping, when not the stack's own key-rotated. */
  readonly publisher?: { keyRotated: RunningFunction; ping(): Promise<EventAnswer> };
}

let keyNumber = 0;

/** CM gains a key; a ping fails during the fault and leaves everything as it was; the next one publishes. */
async function publishThroughFault(round: Round, fault: Fault): Promise<{ during: Awaited<ReturnType<typeof expectConsistent>> }> {
  const { stack, serving } = round;
  const { keyRotated, ping } = round.publisher ?? { keyRotated: stack.keyRotated, ping: stack.ping };
  const store = stack.backend.store;
  const report = publisherReport(keyRotated);
  const before = await expectConsistent(store);
  await expectServed(serving, before.setBytes!);
  const failedBefore = await report.failedCycles();
  stack.emulator.keys.create({ name: `signing-${++keyNumber}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });

  const watcher = watchServing(serving.jwks, serving.jwk, { keys: before.keys, sets: [before.setBytes!] });
  let seen: WatchReport;
  let during;
  try {
    await fault.inject();
    const answer = await ping();
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ outcome: 'failed', error: 'store_failed', added: 1 });
    expect(String(answer.body.message)).toMatch(fault.cause);
    expect(await report.failedCycles()).toBe(failedBefore + 1);
    expect(await report.readiness()).toMatchObject({ status: 'degraded', problem: { failure: 'store' } });
    expect(report.audits().at(-1)).toMatchObject({ outcome: 'failed', failure: 'store', message: expect.stringMatching(fault.cause) as unknown });
    during = await expectConsistent(store);
    expect(during.setBytes).toEqual(before.setBytes);
  } finally {
    seen = await watcher.stop();
    await fault.heal();
  }
  expect(seen.problems).toEqual([]);
  expect(seen.rounds).toBeGreaterThan(0);

  const repaired = await ping();
  expect(repaired).toMatchObject({ status: 200, body: { outcome: 'published', added: 1, keys: before.keys.length + 1 } });
  const after = await expectConsistent(store);
  expect(after.kids).toEqual(expect.arrayContaining([...before.kids]));
  expect(after.kids).toHaveLength(before.kids.length + 1);
  await expectServed(serving, after.setBytes!);
  expect(await report.readiness()).toMatchObject({ status: 'ok' });
  return { during };
}

/** Two keys in CM and a first publication: every round starts from a served set. */
async function publishFirstSet(stack: PublisherStack): Promise<void> {
  stack.emulator.keys.create({ name: 'signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
  stack.emulator.keys.create({ name: 'encryption', algorithm: 'ec', curveid: 'secp384r1', usageMask: ENCRYPT, labels: PUBLISH });
  expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: 2 } });
}

describeIfInstalled('storage faults on a file store (a tmpfs of its own)', tmpfsMountMissing(), 'run the tests as root with CAP_SYS_ADMIN (CI does)', () => {
  let tmpfs: Tmpfs | undefined;
  let directory: string;
  let stack: PublisherStack | undefined;
  let serving: Awaited<ReturnType<typeof startServing>> | undefined;
  const round = (): Round => ({ stack: stack!, serving: serving! });
  /** Dot-prefixed temporary files of the file store: a failed write must not leave one. */
  const temporaries = async (): Promise<string[]> => (await readdir(directory)).filter((name) => name.startsWith('.'));

  beforeAll(async () => {
    tmpfs = await mountTmpfs(256 * 1024);
    directory = join(tmpfs.directory, 'store');
    await mkdir(directory);
    const mounted = tmpfs;
    const backend: TestBackend = {
      name: 'file',
      directory,
      store: new FileKeySetStore(directory),
      env: { JWKS_STORE: `file://${directory}` },
      close: () => mounted.close(),
    };
    stack = await startPublisherStack('file', { backend });
    await publishFirstSet(stack);
    serving = await startServing(backend.env);
  });
  afterAll(async () => {
    await serving?.stop();
    // The stack unmounts the tmpfs with its backend; without a stack, it is unmounted here.
    if (stack !== undefined) await stack.close();
    else await tmpfs?.close();
  });
  afterEach(async () => {
    // Through every fault: no credential or private key material in any process's log.
    for (const fn of [stack!.keyRotated, serving!.jwks, serving!.jwk]) {
      await fn.logsWritten();
      expectNoSecretsInLogs(fn.output(), { secrets: credentialValues(stack!.env) });
    }
  });

  it('ENOSPC on the first file: 503 store_failed, counted, audited; serving keeps its set; the cycle after space is freed publishes', async () => {
    const { during } = await publishThroughFault(round(), { cause: /ENOSPC/, inject: () => tmpfs!.fill(0), heal: () => tmpfs!.unfill() });
    expect(await temporaries()).toEqual([]);
    expect(during.objects).toHaveLength(4);
  });

  it('ENOSPC at jwks.json, after the new per-kid file: that file is written but unlisted, jwks.json stays the old set', async () => {
    const before = await stack!.backend.store.list();
    // One page: the new jwk-<kid>.json fits, the temporary copy of jwks.json does not.
    const { during } = await publishThroughFault(round(), { cause: /ENOSPC/, inject: () => tmpfs!.fill(4096), heal: () => tmpfs!.unfill() });
    const added = during.objects.filter((name) => !before.includes(name));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^jwk-.+\.json$/);
    expect(during.kids.map(keyObjectName)).not.toContain(added[0]);
    expect(await temporaries()).toEqual([]);
    // The repair keeps the per-kid file already there and commits the set and the sources record.
    expect(publisherReport(stack!.keyRotated).audits().at(-1)).toMatchObject({ outcome: 'published', filesWritten: 2 });
  });

  it('EROFS (the volume remounted read-only): the same, and the cycle after it is writable again publishes', async () => {
    await publishThroughFault(round(), { cause: /EROFS/, inject: () => tmpfs!.remount('ro'), heal: () => tmpfs!.remount('rw') });
    expect(await temporaries()).toEqual([]);
  });

  // The bundle, copied where uid 65534 may read it (the checkout may be under a 0700 /root).
  const bundleCopy = readableBundleCopy();
  afterAll(() => rm(bundleCopy, { recursive: true, force: true }));
  const unprivilegedMissing = unprivilegedRunMissing(NOBODY, join(bundleCopy, 'main.cjs'));
  itIfInstalled('EACCES (a publisher running as an unprivileged user that may not write the directory): the same, repaired once it may', unprivilegedMissing, 'permission to run a process as uid 65534', async () => {
    // The emulator's CA sits in a directory only root may read: this publisher gets a copy.
    const caDirectory = await mkdtemp(join(tmpdir(), 'jwks-ca-'));
    await chmod(caDirectory, 0o755);
    const caFile = join(caDirectory, 'ca.pem');
    await writeFile(caFile, stack!.emulator.caPem, { mode: 0o644 });
    let unprivileged: RunningFunction | undefined;
    try {
      unprivileged = await startFunction({ host: 'lean', target: 'key-rotated', env: { ...stack!.env, CIPHERTRUST_CA_FILE: caFile }, uid: NOBODY, gid: NOBODY, bundleCopy });
      await waitForFirstCycle(unprivileged.url);
      // It can read the store and CM: its first cycle finds the published set current.
      expect(publisherReport(unprivileged).audits().at(-1)).toMatchObject({ outcome: 'unchanged' });
      const owner = await stat(directory);
      expect([owner.uid, owner.mode & 0o777]).toEqual([0, 0o755]);
      const send = eventSender(unprivileged);
      await publishThroughFault(
        { ...round(), publisher: { keyRotated: unprivileged, ping: () => send('dev.knative.sources.ping') } },
        { cause: /EACCES/, inject: () => Promise.resolve(), heal: () => chown(directory, NOBODY, NOBODY) },
      );
    } finally {
      await unprivileged?.stop();
      await chown(directory, 0, 0);
      await rm(caDirectory, { recursive: true, force: true });
    }
  });
});

describe('storage faults on an S3 store (a proxy in front of s3rver)', () => {
  let backend: TestBackend | undefined;
  let proxy: S3FaultProxy | undefined;
  let stack: PublisherStack | undefined;
  let serving: Awaited<ReturnType<typeof startServing>> | undefined;
  const round = (): Round => ({ stack: stack!, serving: serving! });
  const heal = (): Promise<void> => Promise.resolve(proxy!.pass());
  const putsSince = (from: number): string[] => proxy!.requests.slice(from).flatMap((request) => (request.method === 'PUT' ? [request.key] : []));

  beforeAll(async () => {
    backend = await openBackend('s3');
    proxy = await startS3FaultProxy(new URL(backend.s3!.endpoint));
    // Only the publisher goes through the proxy; the serving pair reads S3 directly.
    stack = await startPublisherStack('s3', { backend, env: { S3_ENDPOINT: proxy.url, S3_TIMEOUT_MS: '500', S3_MAX_ATTEMPTS: '2' } });
    await publishFirstSet(stack);
    serving = await startServing(backend.env);
  });
  afterAll(async () => {
    await serving?.stop();
    if (stack !== undefined) await stack.close();
    else await backend?.close();
    await proxy?.close();
  });
  afterEach(async () => {
    // Through every fault: no credential or private key material in any process's log.
    for (const fn of [stack!.keyRotated, serving!.jwks, serving!.jwk]) {
      await fn.logsWritten();
      expectNoSecretsInLogs(fn.output(), { secrets: credentialValues(stack!.env) });
    }
  });

  it('PUTs answered 500 InternalError: retried (S3_MAX_ATTEMPTS), then 503 store_failed; serving keeps its set; repaired after', async () => {
    const from = proxy!.requests.length;
    await publishThroughFault(round(), { cause: /InternalError, HTTP 500/, inject: () => Promise.resolve(proxy!.setRule(({ method }) => (method === 'PUT' ? 500 : 'pass'))), heal });
    // The failing cycle: the new per-kid PUT, tried twice, nothing after it; then the repair.
    const [kid, ...rest] = putsSince(from);
    expect(kid).toMatch(/\/jwk-.+\.json$/);
    expect(rest).toEqual([kid, kid, expect.stringMatching(/\/jwks\.json$/), expect.stringMatching(/\/jwks-sources\.json$/)]);
  });

  it('the jwks.json PUT answered 503 SlowDown: the new per-kid object is written but unlisted, jwks.json stays the old set', async () => {
    const before = await stack!.backend.store.list();
    const { during } = await publishThroughFault(round(), {
      cause: /SlowDown, HTTP 503/,
      inject: () => Promise.resolve(proxy!.setRule(({ method, key }) => (method === 'PUT' && key.endsWith('/jwks.json') ? 503 : 'pass'))),
      heal,
    });
    const added = during.objects.filter((name) => !before.includes(name));
    expect(added).toHaveLength(1);
    expect(during.kids.map(keyObjectName)).not.toContain(added[0]);
  });

  it('PUTs that get no answer time out (S3_TIMEOUT_MS): 503 store_failed, nothing half-written, repaired after', async () => {
    await publishThroughFault(round(), { cause: /TimeoutError/, inject: () => Promise.resolve(proxy!.setRule(({ method }) => (method === 'PUT' ? 'no-answer' : 'pass'))), heal });
  });

  it('a jwks.json PUT that commits but whose answer is lost: the cycle fails, the new set is whole and served, and the next cycle completes it', async () => {
    const store = stack!.backend.store;
    const before = await expectConsistent(store);
    const report = publisherReport(stack!.keyRotated);
    stack!.emulator.keys.create({ name: `signing-${++keyNumber}`, algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
    // Old or new set: both are whole; which one a poll sees depends on timing.
    const watcher = watchServing(serving!.jwks, serving!.jwk, { keys: before.keys });
    let seen: WatchReport;
    try {
      proxy!.setRule(({ method, key }) => (method === 'PUT' && key.endsWith('/jwks.json') ? 'forwarded-no-answer' : 'pass'));
      const answer = await stack!.ping();
      expect(answer).toMatchObject({ status: 503, body: { error: 'store_failed', message: expect.stringMatching(/TimeoutError/) as unknown } });
    } finally {
      seen = await watcher.stop();
      proxy!.pass();
    }
    expect(seen.problems).toEqual([]);
    const during = await expectConsistent(store);
    expect(during.kids).toHaveLength(before.kids.length + 1);
    await expectServed(serving!, during.setBytes!);
    // jwks.json is current; the sources record the failed cycle never reached is written now.
    expect(await stack!.ping()).toMatchObject({ status: 200, body: { outcome: 'published', added: 0 } });
    expect(report.audits().at(-1)).toMatchObject({ outcome: 'published', filesWritten: 1 });
    const after = await expectConsistent(store);
    expect(after.setBytes).toEqual(during.setBytes);
  });
});
