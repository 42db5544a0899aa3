/**
 * Issue 6, rotation propagation: from a new key version in CipherTrust Manager (the emulator, which
 * posts its CloudEvent to key-rotated) to the first GET /jwks on jwks-get that lists the new kid.
 * Whole chain in real processes: emulator event -> key-rotated cycle (CM listing, GET of the new
 * key, store write) -> jwks-get's store revalidation -> the answer. Once per backend (file, S3).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { metricValue, rawRequest, type RawResponse } from '../../test/support/http.js';
import type { RunningFunction } from '../../test/support/processes.js';
import { startPublisherStack } from '../../test/support/publisher-stack.js';
import type { BackendName } from '../../test/support/backends.js';
import { pollUntil, summary } from '../lib/cold-timing.js';
import { kidOf } from '../lib/emulator-keys.js';
import { MEMORY_LIMIT_MIB, sampleRss, type RssFigures, type RssSampler } from '../lib/memory.js';
import { childWithEnv } from '../lib/publisher-proc.js';
import { publishAndServe } from '../lib/served-stack.js';
import { check, type BenchOptions, type MeasuredRow, type ScenarioResult, type TargetCheck } from '../lib/result.js';

const POLL_INTERVAL_MS = 10;
/** Figures read from key-rotated's /metrics (prom-client default metrics) at the end. */
const RUNTIME_SERIES = { heap_used_at_end_mib: 'nodejs_heap_size_used_bytes', heap_total_at_end_mib: 'nodejs_heap_size_total_bytes', external_at_end_mib: 'nodejs_external_memory_bytes' };
const TARGET_P95_MS = 2000;
/** Production's settings where the test stack's differ (publisherEnv logs at debug). */
// 20 rotations keep every replaced version (retention): the set outgrows the default key cap (20),
// which would refuse the later ones. The cap is not what this scenario measures.
const PRODUCTION_ENV = { LOG_LEVEL: 'info', JWKS_MAX_KEYS: '1000' };

interface BackendRun {
  readonly latenciesMs: number[];
  readonly memory: RssFigures | undefined;
  /** key-rotated's memory at the end by its /metrics (V8 heap used and total, external), MiB: tells heap growth from the rest. */
  readonly runtimeMib: Readonly<Record<string, number>>;
  readonly publishedKeys: number;
}

export async function runPropagation(options: BenchOptions): Promise<ScenarioResult[]> {
  const rows: MeasuredRow[] = [];
  const targets: TargetCheck[] = [];
  const memoryRows: MeasuredRow[] = [];
  const memoryTargets: TargetCheck[] = [];
  const notes: string[] = [];
  for (const backend of ['file', 's3'] as const) {
    const run = await measure(backend, options.rotations);
    const figures = summary(run.latenciesMs, [50, 95]);
    rows.push({ subject: `${backend} store`, figures });
    targets.push(check(`propagation p95, ${backend} store`, figures.p95_ms ?? Number.NaN, '<=', TARGET_P95_MS, 'ms'));
    notes.push(`${backend}: ${run.publishedKeys} keys published at the end`);
    if (run.memory === undefined || run.memory.samples === 0) {
      notes.push(`${backend}: key-rotated's pid or /proc/<pid>/status not found, no memory figure`);
    } else {
      const { highWaterMarkMb, peakMb, lastMb } = run.memory;
      memoryRows.push({
        subject: `key-rotated (${backend} store), ${options.rotations} rotations`,
        figures: { high_water_mark_mib: highWaterMarkMb, sampled_peak_rss_mib: peakMb, last_rss_mib: lastMb, ...run.runtimeMib },
      });
      memoryTargets.push(check(`key-rotated peak RSS (VmHWM), ${backend} store`, highWaterMarkMb, '<=', MEMORY_LIMIT_MIB, 'MiB'));
    }
  }
  const results: ScenarioResult[] = [
    {
      scenario: 'propagation',
      rows,
      targets,
      notes: [
        `${options.rotations} rotations per backend: emulator.keys.rotate() on an EC P-256 signing key labelled jwks=publish (a new version, the old ones stay Active, so the set grows by one key per rotation)`,
        `timed from the rotate() call to the first GET /jwks (new connection, every ${POLL_INTERVAL_MS} ms) listing the new version's RFC 7638 kid; 200-1000 ms random pause between rotations, so they fall anywhere in jwks-get's revalidation period`,
        'emulator event sink -> key-rotated (lean host, publisher stack of test/support: CIPHERTRUST_TIMEOUT_MS=1000, MAX_ATTEMPTS=3, default CIPHERTRUST_CONCURRENCY=4 and PAGE_SIZE=100, LOG_LEVEL=info); jwks-get on the lean host with production defaults (JWKS_REVALIDATE_MS=1000, JWKS_MAX_AGE=300); S3 is s3rver on loopback in the bench process (S3_TIMEOUT_MS=3000, S3_MAX_ATTEMPTS=1 from test/support/backends.ts)',
        ...notes,
      ],
    },
  ];
  if (memoryRows.length > 0) {
    results.push({
      scenario: 'memory',
      rows: memoryRows,
      targets: memoryTargets,
      notes: [
        "key-rotated's VmHWM (/proc/<pid>/status, MiB, bench/lib/memory.ts): its highest resident set since start, i.e. start-up, first cycle and every rotation cycle of the propagation scenario (production-like set of 4 keys growing by one per rotation); sampled_peak_rss_mib: VmRSS sampled every 200 ms during the rotations; *_at_end_mib: key-rotated's /metrics (nodejs_heap_size_used_bytes, nodejs_heap_size_total_bytes, nodejs_external_memory_bytes) after the last rotation",
      ],
    });
  }
  return results;
}

async function measure(backendName: BackendName, rotations: number): Promise<BackendRun> {
  const stack = await startPublisherStack(backendName, { env: PRODUCTION_ENV });
  let jwksGet: RunningFunction | undefined;
  let memory: RssSampler | undefined;
  try {
    const started = await publishAndServe(stack);
    const rotated = started.rotated;
    jwksGet = started.jwksGet;
    const served = jwksGet.url;
    stack.emulator.setEventSink(stack.keyRotated.url);
    const pid = await childWithEnv('FUNCTION_TARGET', 'key-rotated');
    memory = pid === undefined ? undefined : sampleRss(pid);
    const latenciesMs: number[] = [];
    for (let rotation = 0; rotation < rotations; rotation++) {
      await sleep(200 + Math.random() * 800);
      const started = performance.now();
      const kid = await kidOf(stack.emulator.keys.rotate(rotated.id));
      const listed = await pollUntil(served, '/jwks', (response) => kidsIn(response).includes(kid), { intervalMs: POLL_INTERVAL_MS, timeoutMs: 15_000 });
      latenciesMs.push(listed - started);
    }
    const metrics = (await rawRequest(stack.keyRotated.url, '/metrics')).body.toString('utf8');
    return {
      latenciesMs,
      memory: memory?.stop(),
      runtimeMib: Object.fromEntries(
        Object.entries(RUNTIME_SERIES).map(([figure, series]) => [figure, Math.round((metricValue(metrics, series) / 1024 / 1024) * 10) / 10]),
      ),
      publishedKeys: (await stack.publishedKids()).length,
    };
  } catch (error) {
    throw new Error(`propagation (${backendName}): ${(error as Error).message}\nkey-rotated output (tail):\n${stack.keyRotated.output().slice(-4000)}`);
  } finally {
    memory?.stop();
    stack.emulator.setEventSink(undefined);
    await jwksGet?.stop();
    await stack.close();
  }
}

function kidsIn(response: RawResponse): string[] {
  if (response.status !== 200) return [];
  return (JSON.parse(response.body.toString('utf8')) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
}
