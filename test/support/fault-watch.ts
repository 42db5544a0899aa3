import { validateKeySet, validateSingleJwk, type PublicJwk } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT, StoreError, keyObjectName, type KeySetStore } from '../../shared/store/store.js';
import { rawRequest } from './http.js';
import type { RunningFunction } from './processes.js';
import { canonicalJwk } from './store-consistency.js';

/** What a watcher saw while a fault was on: how many rounds it made, and every rule broken. */
export interface WatchReport {
  /** Rounds that observed something (a round that could not read the store is not one). */
  readonly rounds: number;
  /** Rounds the store could not be read in (a timeout on a loaded machine): nothing observed. */
  readonly unreadable: number;
  readonly problems: readonly string[];
}

export interface Watcher {
  stop(): Promise<WatchReport>;
}

const MAX_PROBLEMS = 20;
const PAUSE_MS = 20;

/** Runs `round` again and again until stopped, collecting what it reports as broken. */
function watch(round: (problem: (text: string) => void) => Promise<void>): Watcher {
  let stopped = false;
  let rounds = 0;
  let unreadable = 0;
  const problems: string[] = [];
  const problem = (text: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(text);
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        await round(problem);
        rounds++;
      } catch (error) {
        // Reading the store directly can time out under load: that tells nothing about its content.
        if (error instanceof StoreError && (error.failure === 'timeout' || error.failure === 'unavailable')) unreadable++;
        else problem(`round failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      await new Promise((done) => setTimeout(done, PAUSE_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { rounds, unreadable, problems };
    },
  };
}

export interface ServingExpectation {
  /** Keys that must stay served by jwk-get, each exactly as given, the whole time. */
  readonly keys: readonly PublicJwk[];
  /** When given, /jwks must answer one of these bodies, byte for byte. */
  readonly sets?: readonly Buffer[];
}

/**
 * Partners' view during a fault: /jwks answers 200 with a valid public set (one of `sets`), and
 * /jwk/<kid> answers 200 with the same key, for every key given, on every round.
 */
export function watchServing(jwks: RunningFunction, jwk: RunningFunction, expected: ServingExpectation): Watcher {
  const members = new Map(expected.keys.map((key) => [key.kid, canonicalJwk(key)]));
  return watch(async (problem) => {
    const set = await rawRequest(jwks.url, '/jwks');
    if (set.status !== 200) problem(`/jwks answered ${set.status}`);
    else if (expected.sets !== undefined && !expected.sets.some((bytes) => bytes.equals(set.body))) problem(`/jwks served an unexpected set: ${set.body.toString()}`);
    else validateOr(problem, '/jwks', () => validateKeySet(set.body));
    for (const [kid, member] of members) {
      const single = await rawRequest(jwk.url, `/jwk/${kid}`);
      if (single.status !== 200) problem(`/jwk/${kid} answered ${single.status}`);
      else validateOr(problem, `/jwk/${kid}`, () => canonicalJwk(validateSingleJwk(single.body)) === member || problem(`/jwk/${kid} served another key`));
    }
  });
}

/**
 * A reader of the store itself, as the serving side reads it, while a writer runs (or dies):
 * jwks.json is always a valid set (one of `sets`, when given); a per-kid file, when there, is
 * complete and equal to its member; and a kid's file may be missing only if jwks.json changed
 * meanwhile (a removal after a newer commit), never while the set that lists it stays current.
 */
export function watchStore(store: KeySetStore, sets?: readonly Buffer[]): Watcher {
  const readSet = async (): Promise<Buffer | undefined> => {
    const result = await store.read(KEY_SET_OBJECT, { maxBytes: 1 << 20 });
    return result.kind === 'found' ? result.object.body : undefined;
  };
  return watch(async (problem) => {
    const before = await readSet();
    if (before === undefined) return problem('jwks.json is missing');
    if (sets !== undefined && !sets.some((bytes) => bytes.equals(before))) return problem(`jwks.json is an unexpected set: ${before.toString()}`);
    let keys: readonly PublicJwk[];
    try {
      keys = validateKeySet(before).keys;
    } catch (error) {
      return problem(`jwks.json is refused: ${String(error)}`);
    }
    for (const key of keys) {
      const file = await store.read(keyObjectName(key.kid), { maxBytes: 1 << 16 });
      if (file.kind === 'found') {
        validateOr(problem, `jwk-${key.kid}.json`, () => canonicalJwk(validateSingleJwk(file.object.body)) === canonicalJwk(key) || problem(`jwk-${key.kid}.json differs from its member`));
      } else if ((await readSet())?.equals(before) === true) {
        problem(`jwks.json lists ${key.kid} and stays current, but its file is missing`);
      }
    }
  });
}

function validateOr(problem: (text: string) => void, what: string, check: () => unknown): void {
  try {
    check();
  } catch (error) {
    problem(`${what} is refused: ${error instanceof Error ? error.message : String(error)}`);
  }
}
