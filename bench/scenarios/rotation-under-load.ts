/**
 * Issue 6, rotation under load (2): jwks-get and jwk-get on the lean host under 50 connections
 * while a new key set is published into their file store every second, as key-rotated publishes
 * it (writeKeySet: per-kid files, then jwks.json, then stale per-kid files removed). No answer may
 * be anything but 200/304, no socket may fail, and every body sampled meanwhile by a second client
 * must be a valid set (or key) that was published, with an ETag that is the body's digest.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { serializeKey, serializeKeySet } from '../../shared/jwks/serialize.js';
import { validateKeySet, validateSingleJwk, type PublicJwk } from '../../shared/jwks/validate.js';
import { serializeSourceRecord } from '../../shared/publisher/key-sources.js';
import { writeKeySet } from '../../shared/publisher/write-key-set.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import type { KeySetStore } from '../../shared/store/store.js';
import { ecKey, rsaKey } from '../../test/support/keys.js';
import { defaultLoadTool, runLoad, type LoadResult } from '../lib/load.js';
import { startServingFunction, type ServedTarget } from '../lib/process.js';
import { check, type BenchOptions, type MeasuredRow, type ScenarioResult, type TargetCheck } from '../lib/result.js';

const ROTATION_INTERVAL_MS = 1000;
const MAX_SET_BYTES = 4 * 1024 * 1024;

interface SampleCounts {
  requests: number;
  /** 200 bodies checked. */
  bodies: number;
  badStatuses: number;
  errors: number;
  invalidBodies: number;
  etagMismatches: number;
  readonly versions: Set<string>;
}

interface StoreFigures {
  setsLoaded: number;
  storeErrors: number;
  refusals: number;
}

interface RunFigures {
  readonly load: LoadResult;
  readonly samples: SampleCounts;
  readonly rotations: number;
  readonly store: StoreFigures;
}

export async function runRotationUnderLoad(options: BenchOptions): Promise<ScenarioResult[]> {
  const tool = defaultLoadTool();
  // Generated before any load: RSA generation would compete with what is measured.
  const stable = (await ecKey('P-256')).jwk;
  const encryption = (await rsaKey('enc')).jwk;
  const signing: PublicJwk[] = [];
  for (let index = 0; index < options.loadSeconds + 4; index++) signing.push((await rsaKey('sig')).jwk);
  // Set i: the current and the retained signing key, plus two keys present in every set.
  const sets = signing.slice(1).map((current, index) => [current, signing[index] as PublicJwk, stable, encryption]);

  const targets: ServedTarget[] = ['jwks-get', 'jwk-get'];
  const figures = new Map<ServedTarget, RunFigures>();
  for (const target of targets) figures.set(target, await underRotation(target, sets, stable, options));

  const rows: MeasuredRow[] = [];
  const checks: TargetCheck[] = [];
  for (const target of targets) {
    const { load, samples, rotations, store } = figures.get(target) as RunFigures;
    rows.push({
      subject: `${target} (lean host)`,
      figures: {
        req_per_s: load.requestsPerSecond,
        p99_ms: Math.round(load.p99Ms * 100) / 100,
        requests: load.requests,
        bad_statuses: load.non2xx,
        socket_errors: load.errors,
        sampler_requests: samples.requests,
        sampler_bad_statuses: samples.badStatuses,
        sampler_errors: samples.errors,
        bodies_sampled: samples.bodies,
        invalid_bodies: samples.invalidBodies,
        etag_mismatches: samples.etagMismatches,
        versions_seen: samples.versions.size,
        rotations,
        sets_loaded: store.setsLoaded,
        store_errors: store.storeErrors,
        set_refusals: store.refusals,
      },
    });
    checks.push(
      check(`${target}: answers other than 200/304 (load and sampler)`, load.non2xx + samples.badStatuses, '<=', 0, 'count'),
      check(`${target}: socket errors (load and sampler)`, load.errors + samples.errors, '<=', 0, 'count'),
      check(`${target}: invalid or unpublished bodies`, samples.invalidBodies, '<=', 0, 'count'),
      check(`${target}: ETag not the body's digest`, samples.etagMismatches, '<=', 0, 'count'),
      // Guards against a vacuous pass: bodies were checked, and new sets did reach the function.
      check(`${target}: bodies sampled`, samples.bodies, '>=', 1, 'count'),
      check(`${target}: new sets loaded during the load`, store.setsLoaded, '>=', 1, 'count'),
    );
  }
  return [
    {
      scenario: 'rotation-under-load',
      rows,
      targets: checks,
      notes: [
        `load: ${tool}${tool === 'wrk' ? ' -t1 with a Lua response() hook counting every status but 200/304 (it costs wrk CPU, and a sampler and a rotator run beside it: these req/s are not comparable with those of the throughput scenario)' : ''}, ${options.connections} connections, ${options.loadSeconds} s after an unrotated ${warmUpSeconds(options)} s warm-up`,
        `a set is published every ${ROTATION_INTERVAL_MS} ms with writeKeySet into a file store (per-kid files, jwks.json, then the retired key's file removed); sets hold 4 keys (new RSA signing key, the retained one, one EC key and one RSA encryption key in every set); functions check the store every 1000 ms (default JWKS_REVALIDATE_MS)`,
        'a sampler in the bench process GETs back to back on one kept-alive connection; each 200 body must pass the serving side\'s validation (validateKeySet / validateSingleJwk), be byte for byte a set (or the key) published, and carry ETag "<base64url SHA-256 of the body>"',
        'jwk-get is asked for the EC key, present in every set; sets_loaded, store_errors, set_refusals are read from the function\'s /metrics (jwks_store_reads_total result="found" for the set, over the measured load)',
      ],
    },
  ];
}

function warmUpSeconds(options: BenchOptions): number {
  return options.quick ? 1 : 2;
}

async function underRotation(target: ServedTarget, sets: readonly PublicJwk[][], stable: PublicJwk, options: BenchOptions): Promise<RunFigures> {
  const directory = await mkdtemp(join(tmpdir(), 'jwks-bench-rotation-'));
  try {
    const rotator = new Rotator(new FileKeySetStore(directory), sets);
    await rotator.publishNext();
    const server = await startServingFunction('lean', target, { JWKS_STORE: `file://${directory}` });
    try {
      const url = server.url + (target === 'jwks-get' ? '/jwks' : `/jwk/${stable.kid}`);
      const accepts = target === 'jwks-get' ? setJudge(rotator.publishedDigests) : keyJudge(stable);
      await runLoad({ url, connections: options.connections, seconds: warmUpSeconds(options) });
      const before = await storeFigures(server.url);
      const sampler = startSampler(url, accepts);
      const rotation = rotator.start(ROTATION_INTERVAL_MS);
      const loaded = await runLoad({ url, connections: options.connections, seconds: options.loadSeconds, countStatuses: true }).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      const samples = await sampler.stop();
      await rotation.stop();
      if ('error' in loaded) throw loaded.error;
      const load = loaded.value;
      const after = await storeFigures(server.url);
      return {
        load,
        samples,
        rotations: rotator.published - 1,
        store: {
          setsLoaded: after.setsLoaded - before.setsLoaded,
          storeErrors: after.storeErrors - before.storeErrors,
          refusals: after.refusals - before.refusals,
        },
      };
    } finally {
      await server.stop();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Publishes sets[0], sets[1]... as key-rotated does, remembering each set's digest before it is written. */
class Rotator {
  readonly publishedDigests = new Set<string>();
  published = 0;
  private current: { bytes: Buffer | undefined; sourcesBytes: Buffer | undefined } = { bytes: undefined, sourcesBytes: undefined };

  constructor(
    private readonly store: KeySetStore,
    private readonly sets: readonly PublicJwk[][],
  ) {}

  async publishNext(): Promise<void> {
    const keys = this.sets[this.published];
    if (keys === undefined) throw new Error(`rotation: only ${this.sets.length} sets were prepared`);
    const setBytes = serializeKeySet(keys);
    const sourcesBytes = serializeSourceRecord(keys.map((jwk) => ({ jwk, sources: [] })));
    this.publishedDigests.add(digest(setBytes));
    await writeKeySet(this.store, { keys, setBytes, sourcesBytes, current: this.current, maxBytes: MAX_SET_BYTES });
    this.current = { bytes: setBytes, sourcesBytes };
    this.published++;
  }

  /** Publishes the next set every intervalMs until stopped; stop() rethrows a failed publication. */
  start(intervalMs: number): { stop(): Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      let next = performance.now() + intervalMs;
      for (;;) {
        await sleep(Math.max(0, next - performance.now()));
        if (stopped) return;
        await this.publishNext();
        next += intervalMs;
      }
    })();
    // Surfaced by stop(); until then a failure must not crash the process as unhandled.
    loop.catch(() => undefined);
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }
}

type Judge = (body: Buffer, bodyDigest: string) => boolean;

function setJudge(published: ReadonlySet<string>): Judge {
  return (body, bodyDigest) => published.has(bodyDigest) && passes(() => validateKeySet(body));
}

function keyJudge(key: PublicJwk): Judge {
  const expected = digest(serializeKey(key));
  return (body, bodyDigest) => bodyDigest === expected && passes(() => validateSingleJwk(body).kid === key.kid);
}

function passes(validation: () => unknown): boolean {
  try {
    return validation() !== false;
  } catch {
    return false;
  }
}

function digest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('base64url');
}

/** GETs url back to back (fetch keeps its connection alive) and judges every answer, until stopped. */
function startSampler(url: string, accepts: Judge): { stop(): Promise<SampleCounts> } {
  const counts: SampleCounts = { requests: 0, bodies: 0, badStatuses: 0, errors: 0, invalidBodies: 0, etagMismatches: 0, versions: new Set() };
  let running = true;
  const loop = (async () => {
    while (running) {
      counts.requests++;
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const body = Buffer.from(await response.arrayBuffer());
        if (response.status !== 200) {
          if (response.status !== 304) counts.badStatuses++;
          continue;
        }
        const bodyDigest = digest(body);
        counts.bodies++;
        counts.versions.add(bodyDigest);
        if (!accepts(body, bodyDigest)) counts.invalidBodies++;
        if (response.headers.get('etag') !== `"${bodyDigest}"`) counts.etagMismatches++;
      } catch {
        counts.errors++;
        await sleep(10);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return counts;
    },
  };
}

/** Counters from the function's /metrics: set versions loaded, store errors, refused sets. */
async function storeFigures(baseUrl: string): Promise<StoreFigures> {
  const response = await fetch(`${baseUrl}/metrics`);
  const lines = (await response.text()).split('\n');
  const sum = (name: string, ...labels: string[]): number =>
    lines
      .filter((line) => line.startsWith(`${name}{`) && labels.every((label) => line.includes(label)))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    setsLoaded: sum('jwks_store_reads_total', 'object="set"', 'result="found"'),
    storeErrors: sum('jwks_store_errors_total'),
    refusals: sum('jwks_set_refusals_total'),
  };
}
