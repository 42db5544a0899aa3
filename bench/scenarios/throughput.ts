/**
 * Issue 6, throughput (1) and memory (6), with issue 16's anchors: jwks-get and jwk-get on the lean
 * host under 50 connections, each against a bare node:http server sending the same bytes and the
 * same headers (its answer captured from the function once, just before its load), and against
 * the minimal bare node:http server (type and length only); nginx serving the same bytes and the
 * same two handlers on functions-framework's host are rows without target. One server at a time,
 * each warmed up before it is measured, while its resident memory is sampled for scenario 6.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeKey } from '../../shared/jwks/serialize.js';
import type { PublicJwk } from '../../shared/jwks/validate.js';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { captureResponse, serializeCapturedResponse, type CapturedResponse } from '../lib/captured-response.js';
import { fileStoreWith, productionLikeKeys } from '../lib/fixture.js';
import { defaultLoadTool, runLoad, type LoadResult } from '../lib/load.js';
import { MEMORY_LIMIT_MIB, sampleRss, type RssFigures } from '../lib/memory.js';
import { nginxPath, startNginx } from '../lib/nginx.js';
import { startBareNode, startSameResponseServer, startServingFunction, type BenchServer, type ServedTarget } from '../lib/process.js';
import { check, type BenchOptions, type MeasuredRow, type ScenarioResult, type TargetCheck } from '../lib/result.js';

/** Issue 16: our code's cost beside Node.js's own cost of sending the same answer (bench/README.md). */
const MIN_RATIO_TO_SAME_RESPONSE = 0.95;
const MIN_RATIO_TO_BARE = 0.8;
const MAX_P99_MS = 5;

type SubjectKey = 'nginx' | 'bare' | 'jwks-lean' | 'jwks-same' | 'jwk-lean' | 'jwk-same' | 'jwks-ff' | 'jwk-ff';

interface Subject {
  readonly key: SubjectKey;
  /** The function's memory is a scenario 6 row; the anchors' is not. */
  readonly isFunction: boolean;
  readonly path: string;
  start(): Promise<BenchServer>;
  /** What a correct answer looks like, checked once before the load. */
  readonly expected: Buffer;
  /** Its answer is kept for the anchor that sends the same bytes (measured next). */
  readonly capturedAs?: ServedTarget;
}

/** The lean function each same-response anchor is compared with. */
const SAME_RESPONSE_OF: Partial<Record<SubjectKey, SubjectKey>> = { 'jwks-lean': 'jwks-same', 'jwk-lean': 'jwk-same' };

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
  const keyPath = `/jwk/${key.kid}`;
  const keyBody = serializeKey(key);
  // Each function's answer, asked once just before its load: its anchor sends exactly that.
  const captured = new Map<ServedTarget, CapturedResponse>();
  const answers = await mkdtemp(join(tmpdir(), 'jwks-bench-answers-'));
  const sameResponse = async (target: ServedTarget): Promise<BenchServer> => {
    const answer = captured.get(target);
    if (answer === undefined) throw new Error(`${target} was not measured, so there is no answer to send the same bytes as`);
    const file = join(answers, `${target}.json`);
    await writeFile(file, serializeCapturedResponse(answer));
    return startSameResponseServer(file, target);
  };
  const candidates: Subject[] = [
    { key: 'nginx', isFunction: false, path: '/jwks', expected: body, start: () => startNginx(body) },
    { key: 'bare', isFunction: false, path: '/jwks', expected: body, start: () => startBareNode(join(directory, KEY_SET_OBJECT)) },
    { key: 'jwks-lean', isFunction: true, path: '/jwks', expected: body, start: () => startServingFunction('lean', 'jwks-get', env), capturedAs: 'jwks-get' },
    { key: 'jwks-same', isFunction: false, path: '/jwks', expected: body, start: () => sameResponse('jwks-get') },
    { key: 'jwk-lean', isFunction: true, path: keyPath, expected: keyBody, start: () => startServingFunction('lean', 'jwk-get', env), capturedAs: 'jwk-get' },
    { key: 'jwk-same', isFunction: false, path: keyPath, expected: keyBody, start: () => sameResponse('jwk-get') },
    { key: 'jwks-ff', isFunction: true, path: '/jwks', expected: body, start: () => startServingFunction('functions-framework', 'jwks-get', env) },
    { key: 'jwk-ff', isFunction: true, path: keyPath, expected: keyBody, start: () => startServingFunction('functions-framework', 'jwk-get', env) },
  ];
  const subjects = candidates.filter((subject) => hasNginx || subject.key !== 'nginx');
  const loadBefore = loadavg()[0] ?? 0;
  const measured = new Map<SubjectKey, Measured>();
  try {
    for (const subject of subjects) {
      const keep = subject.capturedAs === undefined ? undefined : (answer: CapturedResponse) => captured.set(subject.capturedAs as ServedTarget, answer);
      measured.set(subject.key, await measure(subject, options, keep));
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
    await rm(answers, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0] ?? 0;

  const ratio = (result: Measured, anchor: SubjectKey | undefined): number => {
    const anchorRate = anchor === undefined ? undefined : measured.get(anchor)?.load.requestsPerSecond;
    return anchorRate === undefined ? Number.NaN : Math.round((result.load.requestsPerSecond / anchorRate) * 100) / 100;
  };
  const rows: MeasuredRow[] = subjects.map((subject) => {
    const result = measured.get(subject.key) as Measured;
    const same = SAME_RESPONSE_OF[subject.key];
    return {
      subject: result.subject,
      figures: {
        ...loadFigures(result.load),
        ...(same === undefined ? {} : { ratio_to_same_response: ratio(result, same) }),
        ratio_to_bare: ratio(result, 'bare'),
        ratio_to_nginx: ratio(result, hasNginx ? 'nginx' : undefined),
      },
    };
  });
  const targets: TargetCheck[] = [];
  for (const key of ['jwks-lean', 'jwk-lean'] as const) {
    const result = measured.get(key) as Measured;
    const same = measured.get(SAME_RESPONSE_OF[key] as SubjectKey) as Measured;
    targets.push(
      check(`${result.subject}: req/s / ${same.subject} req/s`, ratio(result, SAME_RESPONSE_OF[key]), '>=', MIN_RATIO_TO_SAME_RESPONSE, 'x'),
      check(`${result.subject}: req/s / minimal bare node:http req/s`, ratio(result, 'bare'), '>=', MIN_RATIO_TO_BARE, 'x'),
      check(`${result.subject}: p99`, round(result.load.p99Ms), '<=', MAX_P99_MS, 'ms'),
      check(`${result.subject}: non-2xx/3xx answers and socket errors`, result.load.non2xx + result.load.errors, '<=', 0, 'count'),
    );
  }
  const functions = subjects.filter((subject) => subject.isFunction).map((subject) => measured.get(subject.key) as Measured);
  const lean = [measured.get('jwks-lean'), measured.get('jwk-lean')] as Measured[];
  const common = [
    `load: ${tool}${tool === 'wrk' ? ' -t1' : ''}, ${options.connections} connections, ${options.loadSeconds} s per server after a ${warmUpSeconds(options)} s warm-up; one server at a time, the load generator in its own process`,
    `key set: ${body.length} bytes (bench/lib/fixture.ts) in a file store; jwk-get asked for /jwk/<kid of one RSA key> (${serializeKey(key).length} bytes); NODE_ENV=production, default settings (LOG_LEVEL info)`,
    ...(hasNginx ? [] : ['nginx is not installed (apt-get install nginx-light): no nginx row, so no ratio to nginx (printed only, no target)']),
    `1-minute load average of the machine: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (2 cores; other work on the machine skews every figure)`,
  ];
  return [
    {
      scenario: 'throughput',
      rows,
      targets,
      notes: [
        ...common,
        `anchors: "same response" is a bare node:http server sending the function's own answer (status, header lines in order and case, body, keep-alive timeout), asked of the function just before its load, the ordinary way (writeHead with an object, end with a Buffer); "bare" is the minimal one (bench/lib/cold-bare-server.ts: type and length only, jwks-get's body, also for the jwk row)`,
        `nginx: 1 worker, static file with sendfile, access_log off, keepalive_requests 1000000 (node's servers have no per-connection limit either); nginx and functions-framework rows have no target`,
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

async function measure(subject: Subject, options: BenchOptions, keepAnswer?: (answer: CapturedResponse) => void): Promise<Measured> {
  const server = await subject.start();
  try {
    const url = server.url + subject.path;
    await assertServes(url, subject.expected, server.subject);
    if (keepAnswer !== undefined) keepAnswer(await captureResponse(url));
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
