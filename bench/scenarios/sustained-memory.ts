/**
 * Issue 6, memory (6), over a long load: jwks-get and jwk-get on the lean host under 50
 * connections for BENCH_SUSTAINED_SECONDS (default 90), against a bare node:http server serving the
 * same bytes under the same load (what Node.js itself takes; a row, no target). The throughput
 * scenario's 10 s is too short to see where the resident set settles: V8 grows its young
 * generation to its default maximum (2 x 16 MiB) and its old space over the first minute or so of
 * a heavy load. The peak reached by each quarter of the run shows whether it settles (a leak keeps
 * climbing in the second half).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeKey } from '../../shared/jwks/serialize.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { fileStoreWith, productionLikeKeys } from '../lib/fixture.js';
import { defaultLoadTool, runLoad, type LoadResult } from '../lib/load.js';
import { MEMORY_LIMIT_MIB, sampleRss, type RssFigures } from '../lib/memory.js';
import { startBareNode, startServingFunction, type BenchServer } from '../lib/process.js';
import { check, type BenchOptions, type MeasuredRow, type ScenarioResult, type TargetCheck } from '../lib/result.js';

interface Subject {
  readonly isFunction: boolean;
  readonly path: string;
  start(): Promise<BenchServer>;
}

interface Measured {
  readonly subject: string;
  readonly isFunction: boolean;
  readonly load: LoadResult;
  readonly rss: RssFigures;
  /** Peak VmRSS (MiB) reached by the end of each quarter of the load. */
  readonly peakByQuarter: readonly number[];
}

export async function runSustainedMemory(options: BenchOptions): Promise<ScenarioResult[]> {
  const seconds = options.sustainedSeconds;
  const keys = await productionLikeKeys();
  const { directory, body } = await fileStoreWith(keys);
  const key = keys[0] as PublicJwk;
  const env = { JWKS_STORE: `file://${directory}` };
  const subjects: Subject[] = [
    { isFunction: false, path: '/jwks', start: () => startBareNode(join(directory, KEY_SET_OBJECT)) },
    { isFunction: true, path: '/jwks', start: () => startServingFunction('lean', 'jwks-get', env) },
    { isFunction: true, path: `/jwk/${key.kid}`, start: () => startServingFunction('lean', 'jwk-get', env) },
  ];
  const measured: Measured[] = [];
  try {
    for (const subject of subjects) measured.push(await measure(subject, seconds, options.connections));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const rows: MeasuredRow[] = measured.map((result) => ({
    subject: result.subject,
    figures: {
      req_per_s: result.load.requestsPerSecond,
      non2xx: result.load.non2xx,
      socket_errors: result.load.errors,
      ...Object.fromEntries(result.peakByQuarter.map((peak, index) => [`peak_rss_by_${(index + 1) * 25}pct_mb`, peak])),
      second_half_growth_mb: round(result.peakByQuarter[3]! - result.peakByQuarter[1]!),
      vm_hwm_mb: result.rss.highWaterMarkMb,
    },
  }));
  const targets: TargetCheck[] = measured
    .filter((result) => result.isFunction)
    .flatMap((result) => [
      check(`${result.subject}: peak RSS over ${seconds} s of load`, Math.max(result.rss.peakMb, result.rss.highWaterMarkMb), '<=', MEMORY_LIMIT_MIB, 'MiB'),
      check(`${result.subject}: non-2xx/3xx answers and socket errors`, result.load.non2xx + result.load.errors, '<=', 0, 'count'),
    ]);
  return [
    {
      scenario: 'memory, sustained load',
      rows,
      targets,
      notes: [
        `load: ${defaultLoadTool()}, ${options.connections} connections, ${seconds} s per server (BENCH_SUSTAINED_SECONDS), no warm-up; one server at a time; key set ${body.length} bytes in a file store, jwk-get asked for /jwk/<kid of one RSA key> (${serializeKey(key).length} bytes)`,
        'peak_rss_by_Npct_mb: highest VmRSS (/proc/<pid>/status, sampled every 200 ms) by the end of that share of the load; second_half_growth_mb: by 100% minus by 50% (a resident set that settles grows little there, a leak keeps growing); vm_hwm_mb: VmHWM at the end',
        `target: the larger of the sampled peak and VmHWM <= ${MEMORY_LIMIT_MIB} MiB (100 MB = 10^8 bytes); the bare node:http row (bench/lib/cold-bare-server.ts) has no target: it is the floor Node.js itself reaches under this load`,
      ],
    },
  ];
}

async function measure(subject: Subject, seconds: number, connections: number): Promise<Measured> {
  const server = await subject.start();
  try {
    const sampler = sampleRss(server.pid);
    const peakByQuarter: number[] = [];
    const timers = [1, 2, 3].map((quarter) => setTimeout(() => peakByQuarter.push(sampler.peakSoFarMb()), (seconds * 1000 * quarter) / 4));
    let load: LoadResult;
    try {
      load = await runLoad({ url: server.url + subject.path, connections, seconds });
    } finally {
      for (const timer of timers) clearTimeout(timer);
    }
    const rss = sampler.stop();
    while (peakByQuarter.length < 3) peakByQuarter.push(rss.peakMb);
    peakByQuarter.push(rss.peakMb);
    return { subject: server.subject, isFunction: subject.isFunction, load, rss, peakByQuarter };
  } finally {
    await server.stop();
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
