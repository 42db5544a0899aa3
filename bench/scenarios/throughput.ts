/**
 * Issue 6, throughput (1) and memory (6), with issue 16's anchors: jwks-get and jwk-get on the lean
 * host under 50 connections, each against a bare node:http server sending the same bytes and the
 * same headers (its answer captured from the function once, before any load), and against the
 * minimal bare node:http server (type and length only); nginx serving the same bytes and the same
 * two handlers on functions-framework's host are rows without target.
 *
 * The functions and their anchors are measured interleaved: all started and warmed up, then
 * several rounds of a short load on each, one server at a time, in an order that rotates every
 * round; a ratio is the median of the per-round ratios. On a shared machine one sequential run per
 * server moved by 20-40% between neighbours (bench/README.md, "Node 24"): the machine's state
 * changes between runs, and a round keeps a function and its anchor a few seconds apart.
 *
 * Each function runs right beside its same-answer anchor in every round, first in one round and
 * second in the next: on this kind of VM req/s moved from 24k to 45k between 4 s rounds at a load
 * average of 0.1 (the hypervisor's other tenants), and the server's CPU time per request (printed
 * beside) moved with it, so only neighbours in time compare, and a median over many rounds.
 * Each function's resident memory is sampled from its first measured round to its last, for
 * scenario 6.
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
import { MEMORY_LIMIT_MIB, sampleRss, type RssFigures, type RssSampler } from '../lib/memory.js';
import { processCpuMs } from '../lib/publisher-proc.js';
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

/** Measured in interleaved rounds; the rest (functions-framework) once each, as references. */
const INTERLEAVED: readonly SubjectKey[] = ['nginx', 'bare', 'jwks-lean', 'jwks-same', 'jwk-lean', 'jwk-same'];

/** The lean function each same-response anchor is compared with. */
const SAME_RESPONSE_OF: Partial<Record<SubjectKey, SubjectKey>> = { 'jwks-lean': 'jwks-same', 'jwk-lean': 'jwk-same' };

/** Rounds of interleaved load, and seconds of load per server per round (after one warm-up each). */
function roundsOf(options: BenchOptions): { rounds: number; seconds: number; warmUpSeconds: number } {
  return options.quick ? { rounds: 2, seconds: 1, warmUpSeconds: 1 } : { rounds: 9, seconds: 3, warmUpSeconds: 2 };
}

interface Measured {
  readonly subject: string;
  /** One load per round (a single one for the reference rows measured on their own). */
  readonly loads: readonly LoadResult[];
  /** Per round: the server's CPU time per request (µs); undefined for nginx (its worker is not the pid we hold). */
  readonly cpuUsPerRequest: readonly (number | undefined)[];
  readonly rss: RssFigures;
}

/** A started server ready for its rounds. */
interface Running {
  readonly subject: Subject;
  readonly server: BenchServer;
  readonly url: string;
  readonly loads: LoadResult[];
  readonly cpuUsPerRequest: (number | undefined)[];
  rss?: RssFigures;
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
  // Each function's answer, asked once before any load: its anchor sends exactly that.
  const captured = new Map<ServedTarget, CapturedResponse>();
  const answers = await mkdtemp(join(tmpdir(), 'jwks-bench-answers-'));
  const sameResponse = async (target: ServedTarget): Promise<BenchServer> => {
    const answer = captured.get(target);
    if (answer === undefined) throw new Error(`${target} was not started, so there is no answer to send the same bytes as`);
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
  const plan = roundsOf(options);
  const loadBefore = loadavg()[0] ?? 0;
  const measured = new Map<SubjectKey, Measured>();
  const orders: string[] = [];
  try {
    const interleaved = subjects.filter((subject) => INTERLEAVED.includes(subject.key));
    const rounds = await measureInRounds(interleaved, options, plan, (target, answer) => captured.set(target, answer), orders);
    for (const [subjectKey, result] of rounds) measured.set(subjectKey, result);
    for (const subject of subjects.filter((candidate) => !INTERLEAVED.includes(candidate.key))) {
      measured.set(subject.key, await measureOnce(subject, options, plan.warmUpSeconds));
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
    await rm(answers, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0] ?? 0;

  /** Median over the rounds of this subject's req/s over the anchor's in the same round. */
  const ratio = (result: Measured, anchor: SubjectKey | undefined): number => {
    const anchorLoads = anchor === undefined ? undefined : measured.get(anchor)?.loads;
    if (anchorLoads === undefined) return Number.NaN;
    if (result.loads.length !== anchorLoads.length) return round(median(result.loads) / median(anchorLoads));
    return round(medianOf(perRoundRatios(result.loads, anchorLoads)));
  };
  /** Median over the rounds of the anchor's CPU per request over this subject's (NaN without both). */
  const cpuRatio = (result: Measured, anchor: SubjectKey): number => {
    const anchorCpu = measured.get(anchor)?.cpuUsPerRequest ?? [];
    const ratios = perRoundCpuRatios(result.cpuUsPerRequest, anchorCpu).filter((value) => !Number.isNaN(value));
    return ratios.length === 0 || ratios.length !== result.cpuUsPerRequest.length ? Number.NaN : round(medianOf(ratios));
  };
  const rows: MeasuredRow[] = subjects.map((subject) => {
    const result = measured.get(subject.key) as Measured;
    const same = SAME_RESPONSE_OF[subject.key];
    const cpu = result.cpuUsPerRequest.filter((value): value is number => value !== undefined);
    return {
      subject: result.subject,
      figures: {
        ...loadFigures(result.loads),
        ...(cpu.length === 0 ? {} : { cpu_us_per_request: round(medianOf(cpu)) }),
        ...(same === undefined ? {} : { cpu_ratio_to_same_response: cpuRatio(result, same), cpu_ratio_to_bare: cpuRatio(result, 'bare') }),
        ...(same === undefined ? {} : { ratio_to_same_response: ratio(result, same) }),
        ratio_to_bare: ratio(result, 'bare'),
        ratio_to_nginx: ratio(result, hasNginx ? 'nginx' : undefined),
      },
    };
  });
  const targets: TargetCheck[] = [];
  const perRound: string[] = [];
  for (const leanKey of ['jwks-lean', 'jwk-lean'] as const) {
    const result = measured.get(leanKey) as Measured;
    const sameKey = SAME_RESPONSE_OF[leanKey] as SubjectKey;
    const same = measured.get(sameKey) as Measured;
    const bare = measured.get('bare') as Measured;
    const errors = result.loads.reduce((sum, load) => sum + load.non2xx + load.errors, 0);
    targets.push(
      check(`${result.subject}: req/s / ${same.subject} req/s (median of ${result.loads.length} rounds)`, ratio(result, sameKey), '>=', MIN_RATIO_TO_SAME_RESPONSE, 'x'),
      check(`${result.subject}: req/s / minimal bare node:http req/s (median of ${result.loads.length} rounds)`, ratio(result, 'bare'), '>=', MIN_RATIO_TO_BARE, 'x'),
      check(`${result.subject}: p99 (median of ${result.loads.length} rounds)`, round(medianOf(result.loads.map((load) => load.p99Ms))), '<=', MAX_P99_MS, 'ms'),
      check(`${result.subject}: non-2xx/3xx answers and socket errors`, errors, '<=', 0, 'count'),
    );
    const listed = (ratios: number[]): string => ratios.map((value) => `${round(value)}x`).join(', ');
    const micros = (values: readonly (number | undefined)[]): string => values.map((value) => (value === undefined ? '?' : `${round(value)}`)).join(', ');
    perRound.push(
      `${result.subject} per round: CPU per request ${micros(result.cpuUsPerRequest)} µs (its same-answer anchor ${micros(same.cpuUsPerRequest)}, the minimal server ${micros(bare.cpuUsPerRequest)}): requests per CPU second to its anchor ${listed(perRoundCpuRatios(result.cpuUsPerRequest, same.cpuUsPerRequest))}, to the minimal server ${listed(perRoundCpuRatios(result.cpuUsPerRequest, bare.cpuUsPerRequest))}; req/s ${result.loads.map((load) => Math.round(load.requestsPerSecond)).join(', ')}; p99 ${result.loads.map((load) => `${round(load.p99Ms)}`).join(', ')} ms; req/s to its same-answer anchor ${listed(perRoundRatios(result.loads, same.loads))}, to the minimal server ${listed(perRoundRatios(result.loads, bare.loads))}`,
    );
  }
  const functions = subjects.filter((subject) => subject.isFunction).map((subject) => measured.get(subject.key) as Measured);
  const lean = [measured.get('jwks-lean'), measured.get('jwk-lean')] as Measured[];
  const common = [
    `load: ${tool}${tool === 'wrk' ? ' -t1' : ''}, ${options.connections} connections; nginx, the bare servers and the lean functions interleaved: each warmed up ${plan.warmUpSeconds} s, then ${plan.rounds} rounds of ${plan.seconds} s per server, one server at a time, each function beside its same-answer anchor (first in even rounds, second in odd ones), the groups rotating each round (${orders.join('; ')}); functions-framework rows: one ${options.loadSeconds} s run each after a warm-up, afterwards; the load generator in its own process`,
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
        `figures of the interleaved rows: req_per_s, p50/p99/p999 are medians over the rounds, requests, non2xx and socket_errors sums, ratios the median of the per-round ratios (each within one round); cpu_us_per_request: the server process's CPU time (utime + stime, /proc/<pid>/stat, all its threads) over the requests wrk counted, median over the rounds; cpu_ratio_*: the anchor's CPU per request over the function's (requests per CPU second; printed); ratio_*: req/s over the anchor's (the targets); req_per_s_round_<n> is each round's`,
        ...perRound,
        `anchors: "same response" is a bare node:http server sending the function's own answer (status, header lines in order and case, body, keep-alive timeout), asked of the function before any load, the ordinary way (writeHead with an object, end with a Buffer), under the function's own V8 flags (CMD and manifest NODE_OPTIONS); "bare" is the minimal one (bench/lib/cold-bare-server.ts: type and length only, jwks-get's body, also for the jwk row), with Node's defaults`,
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
        `peak_rss_mb: highest VmRSS of /proc/<pid>/status, sampled every 200 ms from the start of the first measured round to the end of the last (lean functions: ${plan.rounds * plan.seconds} s of load in all); vm_hwm_mb: VmHWM (the kernel's peak since start) at the end; MB here = MiB; the limit is 100 MB = 10^8 bytes = 95.4 MiB`,
        'targets on the lean host (what production runs); the functions-framework rows have no target. key-rotated is measured by the publication scenarios, not here',
      ],
    },
  ];
}

/**
 * Starts every subject (a function before its same-answer anchor, whose answer it provides),
 * warms each up, then runs the rounds; stops them all whatever happens.
 */
async function measureInRounds(
  subjects: readonly Subject[],
  options: BenchOptions,
  plan: { rounds: number; seconds: number; warmUpSeconds: number },
  keepAnswer: (target: ServedTarget, answer: CapturedResponse) => void,
  orders: string[],
): Promise<Map<SubjectKey, Measured>> {
  const running: Running[] = [];
  const samplers = new Map<SubjectKey, RssSampler>();
  try {
    for (const subject of subjects) {
      const server = await subject.start();
      const url = server.url + subject.path;
      running.push({ subject, server, url, loads: [], cpuUsPerRequest: [] });
      await assertServes(url, subject.expected, server.subject);
      if (subject.capturedAs !== undefined) keepAnswer(subject.capturedAs, await captureResponse(url));
    }
    for (const entry of running) await runLoad({ url: entry.url, connections: options.connections, seconds: plan.warmUpSeconds });
    for (const entry of running) samplers.set(entry.subject.key, sampleRss(entry.server.pid));
    for (let index = 0; index < plan.rounds; index++) {
      const order = roundOrder(running, index);
      orders.push(`round ${index + 1}: ${order.map((entry) => entry.subject.key).join(' ')}`);
      for (const entry of order) {
        const cpuBefore = entry.subject.key === 'nginx' ? undefined : await processCpuMs(entry.server.pid);
        const load = await runLoad({ url: entry.url, connections: options.connections, seconds: plan.seconds });
        const cpuAfter = cpuBefore === undefined ? undefined : await processCpuMs(entry.server.pid);
        entry.loads.push(load);
        entry.cpuUsPerRequest.push(cpuBefore === undefined || cpuAfter === undefined || load.requests === 0 ? undefined : ((cpuAfter - cpuBefore) * 1000) / load.requests);
      }
    }
    for (const entry of running) entry.rss = samplers.get(entry.subject.key)?.stop();
  } finally {
    for (const sampler of samplers.values()) sampler.stop();
    await Promise.all(running.map((entry) => entry.server.stop()));
  }
  return new Map(running.map((entry) => [entry.subject.key, { subject: entry.server.subject, loads: entry.loads, cpuUsPerRequest: entry.cpuUsPerRequest, rss: entry.rss as RssFigures }]));
}

/**
 * One round's order: each same-answer anchor stays beside its function (after it in even rounds,
 * before it in odd ones), and the groups rotate by one every round.
 */
function roundOrder(running: readonly Running[], index: number): Running[] {
  const groups: Running[][] = [];
  for (const entry of running) {
    const partnerOf = Object.entries(SAME_RESPONSE_OF).find(([, anchor]) => anchor === entry.subject.key)?.[0];
    const group = partnerOf === undefined ? undefined : groups.find((candidate) => candidate[0]?.subject.key === partnerOf);
    if (group === undefined) groups.push([entry]);
    else group.push(entry);
  }
  const rotated = groups.map((_, position) => groups[(position + index) % groups.length] as Running[]);
  return rotated.flatMap((group) => (index % 2 === 1 ? [...group].reverse() : group));
}

/** A reference row: one warm-up, one run of options.loadSeconds. */
async function measureOnce(subject: Subject, options: BenchOptions, warmUpSeconds: number): Promise<Measured> {
  const server = await subject.start();
  try {
    const url = server.url + subject.path;
    await assertServes(url, subject.expected, server.subject);
    await runLoad({ url, connections: options.connections, seconds: warmUpSeconds });
    const sampler = sampleRss(server.pid);
    let load: LoadResult;
    let rss: RssFigures;
    try {
      load = await runLoad({ url, connections: options.connections, seconds: options.loadSeconds });
    } finally {
      rss = sampler.stop();
    }
    return { subject: server.subject, loads: [load], cpuUsPerRequest: [], rss };
  } finally {
    await server.stop();
  }
}

/** Per round, the anchor's CPU per request over this subject's: above 1 when ours costs less. */
function perRoundCpuRatios(cpu: readonly (number | undefined)[], anchorCpu: readonly (number | undefined)[]): number[] {
  return cpu.map((ours, index) => {
    const theirs = anchorCpu[index];
    return ours === undefined || theirs === undefined || ours === 0 ? Number.NaN : theirs / ours;
  });
}

function perRoundRatios(loads: readonly LoadResult[], anchorLoads: readonly LoadResult[]): number[] {
  return loads.map((load, index) => load.requestsPerSecond / ((anchorLoads[index] as LoadResult).requestsPerSecond));
}

function median(loads: readonly LoadResult[]): number {
  return medianOf(loads.map((load) => load.requestsPerSecond));
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function assertServes(url: string, expected: Buffer, subject: string): Promise<void> {
  const response = await fetch(url);
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200 || !bytes.equals(expected)) {
    throw new Error(`${subject}: GET ${url} answered ${response.status} with ${bytes.length} bytes, not the ${expected.length} expected`);
  }
}

function loadFigures(loads: readonly LoadResult[]): Record<string, number> {
  const medianField = (pick: (load: LoadResult) => number): number => medianOf(loads.map(pick));
  return {
    req_per_s: Math.round(medianField((load) => load.requestsPerSecond)),
    p50_ms: round(medianField((load) => load.p50Ms)),
    p99_ms: round(medianField((load) => load.p99Ms)),
    p999_ms: round(medianField((load) => load.p999Ms)),
    requests: loads.reduce((sum, load) => sum + load.requests, 0),
    non2xx: loads.reduce((sum, load) => sum + load.non2xx, 0),
    socket_errors: loads.reduce((sum, load) => sum + load.errors, 0),
    ...(loads.length > 1 ? Object.fromEntries(loads.map((load, index) => [`req_per_s_round_${index + 1}`, Math.round(load.requestsPerSecond)])) : {}),
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
