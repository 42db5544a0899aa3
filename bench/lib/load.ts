/**
 * HTTP load at a fixed number of connections (issue 6: `wrk -t1 -c50`), with autocannon as the
 * fallback where wrk is not installed. The load generator is always its own process, so the bench
 * process stays free for what runs beside it (a rotator, a body sampler, the RSS sampler).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './process.js';

export type LoadTool = 'wrk' | 'autocannon';

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  /**
   * Count every status other than `okStatuses` (issue 6's rotation scenario). With wrk this adds a
   * response() hook, which slows wrk down: leave it off for throughput figures.
   */
  readonly countStatuses?: boolean;
  /** The statuses countStatuses accepts; default 200 and 304. */
  readonly okStatuses?: readonly number[];
  /** A request other than GET: the same one on every connection (CloudEvents for the eventing functions). */
  readonly request?: LoadRequest;
  /** Default: wrk when installed, else autocannon. */
  readonly tool?: LoadTool;
}

export interface LoadRequest {
  readonly method: 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface LoadResult {
  readonly tool: LoadTool;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  /**
   * With countStatuses: answers other than okStatuses. Without: answers with a status above 399
   * (what wrk counts by itself; autocannon's own non2xx would count a 304 too).
   */
  readonly non2xx: number;
  /** Socket errors: connect, read, write and timeouts. */
  readonly errors: number;
  readonly requests: number;
}

/**
 * The tool runLoad uses by default: BENCH_LOAD_TOOL (wrk or autocannon) when set, else wrk, else
 * autocannon; throws when neither is installed.
 */
export function defaultLoadTool(): LoadTool {
  const forced = process.env.BENCH_LOAD_TOOL;
  if (forced === 'wrk' || forced === 'autocannon') return forced;
  if (findExecutable('wrk') !== undefined) return 'wrk';
  if (autocannonPath() !== undefined) return 'autocannon';
  throw new Error('neither wrk (apt-get install wrk) nor autocannon (npm install) is available');
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  return (options.tool ?? defaultLoadTool()) === 'wrk' ? runWrk(options) : runAutocannon(options);
}

const MARKER = 'BENCH_JSON ';

/** done() runs in its own Lua state: the per-thread status counts are read back with thread:get. */
function wrkScript(options: LoadOptions): string {
  const accepted = (options.okStatuses ?? [200, 304]).map((status) => `status ~= ${status}`).join(' and ');
  const statusHook = `
function init(args) bad = 0 end
function response(status, headers, body)
  if ${accepted} then bad = bad + 1 end
end
`;
  const request = options.request;
  // Lua long strings ([==[ ]==]) take the values as they are; none of ours holds "]==]".
  const requestSetup =
    request === undefined
      ? ''
      : [`wrk.method = "${request.method}"`, `wrk.body = [==[${request.body}]==]`, ...Object.entries(request.headers).map(([name, value]) => `wrk.headers[ [==[${name}]==] ] = [==[${value}]==]`)].join('\n');
  return `
${requestSetup}
local threads = {}
function setup(thread) table.insert(threads, thread) end
${options.countStatuses === true ? statusHook : ''}
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format('\\n${MARKER}{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"bad":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status, bad,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
`;
}

interface WrkSummary {
  requests: number;
  duration_us: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  status: number;
  bad: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
}

async function runWrk(options: LoadOptions): Promise<LoadResult> {
  const wrk = findExecutable('wrk');
  if (wrk === undefined) throw new Error('wrk is not installed (apt-get install wrk)');
  const directory = await mkdtemp(join(tmpdir(), 'jwks-bench-wrk-'));
  try {
    const script = join(directory, 'report.lua');
    await writeFile(script, wrkScript(options));
    const args = ['-t1', `-c${options.connections}`, `-d${Math.max(1, Math.round(options.seconds))}s`, '--timeout', '2s', '-s', script, options.url];
    const stdout = await run(wrk, args);
    const line = stdout.split('\n').find((candidate) => candidate.startsWith(MARKER));
    if (line === undefined) throw new Error(`wrk printed no summary:\n${stdout}`);
    const summary = JSON.parse(line.slice(MARKER.length)) as WrkSummary;
    return {
      tool: 'wrk',
      requestsPerSecond: Math.round(summary.requests / (summary.duration_us / 1e6)),
      p50Ms: summary.p50_us / 1000,
      p99Ms: summary.p99_us / 1000,
      p999Ms: summary.p999_us / 1000,
      non2xx: options.countStatuses === true ? summary.bad : summary.status,
      errors: summary.connect + summary.read + summary.write + summary.timeout,
      requests: summary.requests,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

interface AutocannonSummary {
  requests: { average: number };
  latency: { p50: number; p99: number; p99_9: number; totalCount: number };
  errors: number;
  timeouts: number;
  statusCodeStats?: Record<string, { count: number }>;
}

async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const autocannon = autocannonPath();
  if (autocannon === undefined) throw new Error('autocannon is not installed (npm install --save-dev autocannon)');
  const request = options.request;
  const requestArgs =
    request === undefined ? [] : ['-m', request.method, '-b', request.body, ...Object.entries(request.headers).flatMap(([name, value]) => ['-H', `${name}=${value}`])];
  const args = [autocannon, '--json', '-c', String(options.connections), '-d', String(options.seconds), '--timeout', '2', ...requestArgs, options.url];
  const summary = JSON.parse(await run(process.execPath, args)) as AutocannonSummary;
  // Every status count comes from here: without it, errors would read as none.
  if (summary.statusCodeStats === undefined) throw new Error('autocannon printed no statusCodeStats: cannot count the answers by status');
  const statuses = Object.entries(summary.statusCodeStats);
  const accepted = (options.okStatuses ?? [200, 304]).map(String);
  const countWhere = (isCounted: (status: string) => boolean): number => statuses.filter(([status]) => isCounted(status)).reduce((sum, [, stats]) => sum + stats.count, 0);
  return {
    tool: 'autocannon',
    requestsPerSecond: Math.round(summary.requests.average),
    p50Ms: summary.latency.p50,
    p99Ms: summary.latency.p99,
    p999Ms: summary.latency.p99_9,
    non2xx: options.countStatuses === true ? countWhere((status) => !accepted.includes(status)) : countWhere((status) => Number(status) > 399),
    // autocannon counts a timeout among its errors as well.
    errors: summary.errors,
    requests: summary.latency.totalCount,
  };
}

function autocannonPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('autocannon');
  } catch {
    return undefined;
  }
}

/** Runs a command to completion; its stdout, or an error carrying its stderr. */
function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    child.once('error', fail);
    child.once('close', (code) => (code === 0 ? done(stdout) : fail(new Error(`${command} exited with ${code}: ${stderr}`))));
  });
}
