/**
 * The scene the kill suites share: set A (three keys) published and served, CM already moved on
 * to set B (two keys added, a compromised one removed), and a round that kills a publication from
 * A to B, watches readers meanwhile, checks what the dead run left, and lets the next run repair.
 */
import { validateKeySet } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT, SOURCES_OBJECT, type KeySetStore, type ObjectName } from '../../shared/store/store.js';
import type { BackendName, TestBackend } from '../support/backends.js';
import { watchServing, watchStore, type WatchReport } from '../support/fault-watch.js';
import { rawRequest } from '../support/http.js';
import { runRefresh, type RefreshResult } from '../support/processes.js';
import { startPublisherStack, type PublisherStack } from '../support/publisher-stack.js';
import { storeProblems } from '../support/store-consistency.js';
import { ENCRYPT, PUBLISH, SIGN, expectServed, startServing } from './support.js';

export type Snapshot = ReadonlyMap<ObjectName, Buffer>;

export interface Scene {
  readonly stack: PublisherStack;
  readonly serving: Awaited<ReturnType<typeof startServing>>;
  /** Before and after the publication every run attempts. */
  readonly a: Snapshot;
  readonly b: Snapshot;
  /** The kid CM compromised between A and B: its file is the stale one B removes. */
  readonly removedKid: string;
}

export async function snapshot(store: KeySetStore): Promise<Snapshot> {
  const { problems, view } = await storeProblems(store);
  expect(problems).toEqual([]);
  return view.bytes;
}

/** Puts the store back to `target` in the publisher's own order, so readers meanwhile see whole sets. */
export async function restore(store: KeySetStore, target: Snapshot): Promise<void> {
  for (const [name, bytes] of target) if (name !== KEY_SET_OBJECT && name !== SOURCES_OBJECT) await store.write(name, bytes);
  await store.write(KEY_SET_OBJECT, target.get(KEY_SET_OBJECT)!);
  await store.write(SOURCES_OBJECT, target.get(SOURCES_OBJECT)!);
  for (const name of await store.list()) if (!target.has(name)) await store.remove(name);
}

/** A (sign, sign, encrypt) published; then CM gains two signing keys and compromises the encryption key: B. */
async function setScene(stack: PublisherStack): Promise<Omit<Scene, 'serving'>> {
  const store = stack.backend.store;
  const { keys } = stack.emulator;
  keys.create({ name: 'signing-1', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
  keys.create({ name: 'signing-2', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN, labels: PUBLISH });
  const encryption = keys.create({ name: 'encryption', algorithm: 'ec', curveid: 'prime256v1', usageMask: ENCRYPT, labels: PUBLISH });
  expect(await stack.ping()).toMatchObject({ status: 200, body: { outcome: 'published', keys: 3 } });
  const a = await snapshot(store);
  keys.create({ name: 'signing-3', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN, labels: PUBLISH });
  keys.create({ name: 'signing-4', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN, labels: PUBLISH });
  keys.revoke(encryption.id, 'KeyCompromise');
  const clean = await runRefresh([], stack.env);
  expect(JSON.parse(clean.stdout)).toMatchObject({ outcome: 'published', keys: 4, filesWritten: 4, filesRemoved: 1 });
  const b = await snapshot(store);
  const removed = [...a.keys()].filter((name) => !b.has(name));
  expect(removed).toHaveLength(1);
  return { stack, a, b, removedKid: removed[0]!.slice('jwk-'.length, -'.json'.length) };
}

/**
 * Starts from A, runs `kill` (a publication that dies), watching the whole time; checks what the
 * dead run left; then runs the publisher again and checks it leaves exactly B.
 */
export async function killedThenRepaired(scene: Scene, committed: 'a' | 'b', kill: () => Promise<RefreshResult | undefined>, repair: () => Promise<void>): Promise<Snapshot> {
  const { stack, serving, a, b } = scene;
  const store = stack.backend.store;
  await restore(store, a);
  await expectServed(serving, a.get(KEY_SET_OBJECT)!);
  const sets = [a.get(KEY_SET_OBJECT)!, b.get(KEY_SET_OBJECT)!];
  // jwk-get must answer for the keys in both sets the whole time.
  const inB = new Set(validateKeySet(sets[1]!).keys.map((key) => key.kid));
  const staying = validateKeySet(sets[0]!).keys.filter((key) => inB.has(key.kid));
  const watchers = [watchServing(serving.jwks, serving.jwk, { keys: staying, sets }), watchStore(store, sets)];
  let seen: WatchReport[];
  let result: RefreshResult | undefined;
  try {
    result = await kill();
  } finally {
    seen = await Promise.all(watchers.map((watcher) => watcher.stop()));
  }
  if (result !== undefined) {
    expect(result.signal).toBe('SIGKILL');
    expect(result.stdout).toBe('');
  }
  for (const report of seen) {
    expect(report.problems).toEqual([]);
    expect(report.rounds).toBeGreaterThan(0);
  }

  const { problems, view } = await storeProblems(store);
  expect(problems).toEqual([]);
  expect(view.setBytes).toEqual(scene[committed].get(KEY_SET_OBJECT));
  // Nothing the committed set needs is gone, and whole objects only: each holds its bytes from
  // before the run or from after it.
  expect([...scene[committed].keys()].filter((name) => !view.bytes.has(name))).toEqual([]);
  for (const [name, bytes] of view.bytes) {
    expect({ name, whole: a.get(name)?.equals(bytes) === true || b.get(name)?.equals(bytes) === true }).toEqual({ name, whole: true });
  }
  await expectServed(serving, view.setBytes!);
  const left = view.bytes;

  await repair();
  const repaired = await snapshot(store);
  expect([...repaired.keys()]).toEqual([...b.keys()]);
  for (const [name, bytes] of b) expect({ name, bytes: repaired.get(name)?.toString() }).toEqual({ name, bytes: bytes.toString() });
  await expectServed(serving, b.get(KEY_SET_OBJECT)!);
  expect((await rawRequest(serving.jwk.url, `/jwk/${scene.removedKid}`)).status).toBe(404);
  return left;
}

export async function repairWithRefresh(env: Record<string, string>): Promise<void> {
  const run = await runRefresh([], env);
  expect({ code: run.code, stdout: JSON.parse(run.stdout) as unknown }).toMatchObject({ code: 0, stdout: { outcome: 'published', keys: 4 } });
}

export async function startScene(backendName: BackendName, options: { backend?: TestBackend; env?: Record<string, string> } = {}): Promise<Scene> {
  const stack = await startPublisherStack(backendName, options);
  try {
    const base = await setScene(stack);
    await restore(stack.backend.store, base.a);
    return { ...base, serving: await startServing(stack.backend.env) };
  } catch (error) {
    await stack.close();
    throw error;
  }
}

