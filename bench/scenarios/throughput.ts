/**
 * Issue 6, throughput (1) and memory (6): jwks-get and jwk-get on the lean host under 50
 * connections, against nginx serving the same bytes (the anchor of the ratio target), a bare
 * node:http server (what Node.js itself costs; a row, no target) and the same two handlers on
 * functions-framework's host (rows, no target). One server at a time, each warmed up before it is
 * measured, while its resident memory is sampled for scenario 6.
 */
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { serializeKey } from '../../shared/jwks/serialize.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { fileStoreWith, productionLikeKeys } from '../lib/fixture.js';
import { defaultLoadTool, runLoad, type LoadResult } from '../lib/load.js';
import { MEMORY_LIMIT_MIB, sampleRss, type RssFigures } from '../lib/memory.js';
import { nginxPath, startNginx } from '../lib/nginx.js';
import { startBareNode, startServingFunction, type BenchServer } from '../lib/process.js';
import { check, type BenchOptions, type MeasuredRow, type ScenarioResult, type TargetCheck } from '../lib/result.js';

const MIN_RATIO_TO_NGINX = 0.5;
const MAX_P99_MS = 10;

interface Subject {
  readonly key: 'nginx' | 'bare' | 'jwks-lean' | 'jwk-lean' | 'jwks-ff' | 'jwk-ff';
  /** The function's memory is a scenario 6 row; the anchors' is not. */
  readonly isFunction: boolean;
  readonly path: string;
  start(): Promise<BenchServer>;
  /** What a correct answer looks like, checked once before the load. */
  readonly expected: Buffer;
}

interface Measured {
  readonly subject: string;
  readonly load: LoadResult;
  readonly rss: RssFigures;
}

export async function runThroughput(options: BenchOptions): Promise<ScenarioResult[]> {
  const tool = defaultLoadTool();
  const keys = await productionLikeKeys();
  const { directory, body } = await fileStoreWith(keys);
  const key = keys[0] as PublicJwk;
  const env = { JWKS_STORE: `file://${directory}` };
  const hasNginx = nginxPath() !== undefined;
  const candidates: Subject[] = [
    { key: 'nginx', isFunction: false, path: '/jwks', expected: body, start: () => startNginx(body) },
    { key: 'bare', isFunction: false, path: '/jwks', expected: body, start: () => startBareNode(join(directory, KEY_SET_OBJECT)) },
    { key: 'jwks-lean', isFunction: true, path: '/jwks', expected: body, start: () => startServingFunction('lean', 'jwks-get', env) },
    { key: 'jwk-lean', isFunction: true, path: `/jwk/${key.kid}`, expected: serializeKey(key), start: () => startServingFunction('lean', 'jwk-get', env) },
    { key: 'jwks-ff', isFunction: true, path: '/jwks', expected: body, start: () => startServingFunction('functions-framework', 'jwks-get', env) },
    { key: 'jwk-ff', isFunction: true, path: `/jwk/${key.kid}`, expected: serializeKey(key), start: () => startServingFunction('functions-framework', 'jwk-get', env) },
  ];
  const subjects = candidates.filter((subject) => hasNginx || subject.key !== 'nginx');
  const loadBefore = loadavg()[0] ?? 0;
  const measured = new Map<Subject['key'], Measured>();
  try {
    for (const subject of subjects) measured.set(subject.key, await measure(subject, options));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0] ?? 0;

  const nginx = measured.get('nginx')?.load.requestsPerSecond ?? Number.NaN;
  const ratio = (result: Measured): number => Math.round((result.load.requestsPerSecond / nginx) * 100) / 100;
  const rows: MeasuredRow[] = subjects.map((subject) => {
    const result = measured.get(subject.key) as Measured;
    return { subject: result.subject, figures: { ...loadFigures(result.load), ratio_to_nginx: ratio(result) } };
  });
  const targets: TargetCheck[] = [];
  for (const key of ['jwks-lean', 'jwk-lean'] as const) {
    const result = measured.get(key) as Measured;
    targets.push(
      check(`${result.subject}: req/s / nginx req/s`, ratio(result), '>=', MIN_RATIO_TO_NGINX, 'x'),
      check(`${result.subject}: p99`, round(result.load.p99Ms), '<=', MAX_P99_MS, 'ms'),
      check(`${result.subject}: non-2xx/3xx answers and socket errors`, result.load.non2xx + result.load.errors, '<=', 0, 'count'),
    );
  }
  const functions = subjects.filter((subject) => subject.isFunction).map((subject) => measured.get(subject.key) as Measured);
  const lean = [measured.get('jwks-lean'), measured.get('jwk-lean')] as Measured[];
  const common = [
    `load: ${tool}${tool === 'wrk' ? ' -t1' : ''}, ${options.connections} connections, ${options.loadSeconds} s per server after a ${warmUpSeconds(options)} s warm-up; one server at a time, the load generator in its own process`,
    `key set: ${body.length} bytes (bench/lib/fixture.ts) in a file store; jwk-get asked for /jwk/<kid of one RSA key> (${serializeKey(key).length} bytes); NODE_ENV=production, default settings (LOG_LEVEL info)`,
    ...(hasNginx ? [] : ['nginx is not installed (apt-get install nginx-light): no nginx row, so no ratio (the ratio targets fail)']),
    `1-minute load average of the machine: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (2 cores; other work on the machine skews every figure)`,
  ];
  return [
    {
      scenario: 'throughput',
      rows,
      targets,
      notes: [
        ...common,
        `nginx: 1 worker, static file with sendfile, access_log off, keepalive_requests 1000000 (node's servers have no per-connection limit either); bare node:http and functions-framework rows have no target`,
        tool === 'wrk'
          ? 'non2xx: answers with status > 399 (wrk summary.errors.status); socket_errors: connect + read + write + timeout (2 s)'
          : 'non2xx: answers with status > 399 (autocannon statusCodeStats); socket_errors: autocannon errors, timeouts (2 s) included; latencies have 1 ms resolution',
      ],
    },
    {
      scenario: 'memory',
      rows: functions.map((result) => ({
        subject: result.subject,
        figures: { peak_rss_mb: result.rss.peakMb, vm_hwm_mb: result.rss.highWaterMarkMb, rss_samples: result.rss.samples },
      })),
      targets: lean.map((result) => check(`${result.subject}: peak RSS under load`, result.rss.peakMb, '<=', MEMORY_LIMIT_MIB, 'MiB')),
      notes: [
        ...common,
        'peak_rss_mb: highest VmRSS of /proc/<pid>/status, sampled every 200 ms during the measured load; vm_hwm_mb: VmHWM (the kernel\'s peak since start) at the end; MB here = MiB; the limit is 100 MB = 10^8 bytes = 95.4 MiB',
        'targets on the lean host (what production runs); the functions-framework rows have no target. key-rotated is measured by the publication scenarios, not here',
      ],
    },
  ];
}

function warmUpSeconds(options: BenchOptions): number {
  return options.quick ? 1 : 2;
}

async function measure(subject: Subject, options: BenchOptions): Promise<Measured> {
  const server = await subject.start();
  try {
    const url = server.url + subject.path;
    await assertServes(url, subject.expected, server.subject);
    await runLoad({ url, connections: options.connections, seconds: warmUpSeconds(options) });
    const sampler = sampleRss(server.pid);
    let load: LoadResult;
    try {
      load = await runLoad({ url, connections: options.connections, seconds: options.loadSeconds });
    } catch (error) {
      sampler.stop();
      throw error;
    }
    return { subject: server.subject, load, rss: sampler.stop() };
  } finally {
    await server.stop();
  }
}

async function assertServes(url: string, expected: Buffer, subject: string): Promise<void> {
  const response = await fetch(url);
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200 || !bytes.equals(expected)) {
    throw new Error(`${subject}: GET ${url} answered ${response.status} with ${bytes.length} bytes, not the ${expected.length} expected`);
  }
}

function loadFigures(load: LoadResult): Record<string, number> {
  return {
    req_per_s: load.requestsPerSecond,
    p50_ms: round(load.p50Ms),
    p99_ms: round(load.p99Ms),
    p999_ms: round(load.p999Ms),
    requests: load.requests,
    non2xx: load.non2xx,
    socket_errors: load.errors,
  };
}

function round(milliseconds: number): number {
  return Math.round(milliseconds * 100) / 100;
}
