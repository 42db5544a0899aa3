/**
 * The publisher killed with SIGKILL in the middle of a publication on the file store, at each step
 * of the write order (shared/publisher/write-key-set.ts): the new per-kid files, jwks.json (the
 * commit point), jwks-sources.json, then the removal of the stale per-kid file. Killed from
 * outside, never through a hook in production code: a module preloaded into jwks-refresh
 * (test/support/kill-at-store-op.ts) kills its own process at the Nth write, rename or unlink.
 *
 * Every run goes from set A to set B (kill-scene.ts). While it runs and after it dies, jwks-get and
 * jwk-get (own processes) and a direct reader of the store only ever see A or B, whole; the dead
 * run leaves a consistent store in which every object holds its bytes from before or after the
 * publication (its temporary file, whatever it holds, is never an object); and the next run leaves
 * exactly what an uninterrupted publication leaves.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyObjectName, type ObjectName } from '../../shared/store/store.js';
import { KILL_MARKER } from '../support/kill-at-store-op.js';
import { startRefresh } from '../support/processes.js';
import { killedThenRepaired, repairWithRefresh, startScene, type Scene } from './kill-scene.js';

/** Compiled by `npm test` (tsc) before jest runs; the publisher process preloads it. */
const KILL_PRELOAD = fileURLToPath(new URL('../../dist/test/support/kill-at-store-op.js', import.meta.url));

describe('the publisher killed mid-publication on the file store', () => {
  let world: Scene | undefined;
  const directory = (): string => world!.stack.backend.directory!;
  const temporaries = async (): Promise<string[]> => (await readdir(directory())).filter((name) => name.startsWith('.'));

  beforeAll(async () => {
    if (!existsSync(KILL_PRELOAD)) throw new Error(`${KILL_PRELOAD} is missing: run npm run build first`);
    world = await startScene('file');
  });
  afterAll(async () => {
    await world?.serving.stop();
    await world?.stack.close();
  });
  beforeEach(async () => {
    // A killed writer's temporary file stays behind (nothing reads it); each test counts its own.
    for (const name of await temporaries()) await rm(join(directory(), name));
  });

  /**
   * The write order for A to B: per-kid files #1 and #2, jwks.json #3, jwks-sources.json #4, then
   * the removal of the compromised key's file. A file is written to a temporary name, synced,
   * then renamed over its object.
   */
  const points: { at: string; step: RegExp; committed: 'a' | 'b'; temporary?: { object: RegExp; bytes: 'none' | 'half' | 'all' } }[] = [
    { at: 'write:1', step: /write #1 \(\.jwk-.+\.tmp\)/, committed: 'a', temporary: { object: /^jwk-/, bytes: 'none' } },
    { at: 'write:1:half', step: /write #1 \(\.jwk-.+\.tmp, half written\)/, committed: 'a', temporary: { object: /^jwk-/, bytes: 'half' } },
    { at: 'rename:1', step: /rename #1 \(jwk-.+\.json\)/, committed: 'a', temporary: { object: /^jwk-/, bytes: 'all' } },
    { at: 'rename:2', step: /rename #2 \(jwk-.+\.json\)/, committed: 'a', temporary: { object: /^jwk-/, bytes: 'all' } },
    { at: 'write:3:half', step: /write #3 \(\.jwks\.json\..+\.tmp, half written\)/, committed: 'a', temporary: { object: /^jwks\.json$/, bytes: 'half' } },
    { at: 'rename:3', step: /rename #3 \(jwks\.json\)/, committed: 'a', temporary: { object: /^jwks\.json$/, bytes: 'all' } },
    { at: 'write:4', step: /write #4 \(\.jwks-sources\.json\..+\.tmp\)/, committed: 'b', temporary: { object: /^jwks-sources\.json$/, bytes: 'none' } },
    { at: 'rename:4', step: /rename #4 \(jwks-sources\.json\)/, committed: 'b', temporary: { object: /^jwks-sources\.json$/, bytes: 'all' } },
    { at: 'unlink:1', step: /unlink #1 \(jwk-.+\.json\)/, committed: 'b' },
  ];

  it.each(points)('killed at $at: readers see A or B whole, the store is consistent, the next run leaves B', async ({ at, step, committed, temporary }) => {
    let pid = 0;
    const left = await killedThenRepaired(
      world!,
      committed,
      async () => {
        const run = startRefresh([], { ...world!.stack.env, NODE_OPTIONS: `--import ${KILL_PRELOAD}`, KILL_AT: at, KILL_STORE_DIR: directory() });
        pid = run.pid;
        const result = await run.result;
        // The kill happened at the step meant, not earlier or later.
        expect(result.stderr).toContain(KILL_MARKER);
        expect(result.stderr.slice(result.stderr.indexOf(KILL_MARKER))).toMatch(step);
        if (temporary !== undefined) await expectTemporary(pid, temporary);
        else expect(await temporaries()).toEqual([]);
        return result;
      },
      () => repairWithRefresh(world!.stack.env),
    );
    if (at === 'unlink:1') expect(left.has(keyObjectName(world!.removedKid))).toBe(true);
  });

  /** The dead writer's temporary file: invisible to the store, holding a prefix of what it was writing. */
  async function expectTemporary(pid: number, expected: { object: RegExp; bytes: 'none' | 'half' | 'all' }): Promise<void> {
    const names = await temporaries();
    expect(names).toHaveLength(1);
    const name = names[0]!;
    expect(name).toContain(`.${pid}.`);
    const object = name.slice(1, name.indexOf(`.${pid}.`)) as ObjectName;
    expect(object).toMatch(expected.object);
    expect(await world!.stack.backend.store.list()).not.toContain(name);
    const target = world!.b.get(object)!;
    const written = await readFile(join(directory(), name));
    const length = { none: 0, half: target.length >> 1, all: target.length }[expected.bytes];
    expect(written.equals(target.subarray(0, length))).toBe(true);
  }
});

