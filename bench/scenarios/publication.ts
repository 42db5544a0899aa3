/**
 * Issue 6, publication at scale: a CipherTrust Manager (the emulator, 5 ms per request) holding
 * `totalKeys` keys of which `selectedKeys` carry jwks=publish. Times key-rotated, the publisher the
 * manifests deploy (one warm process), (a) publishing into an empty file store and (b) on the next
 * ping with nothing changed, which must write nothing; and, without a target, (c) jwks-refresh
 * (the CronJob alternative, a new process each run) with nothing changed. Counts CM requests.
 */
import { stat, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TestEmulator } from '../../test/emulator/support.js';
import { runRefresh } from '../../test/support/processes.js';
import { startPublisherStack, type PublisherStack } from '../../test/support/publisher-stack.js';
import { ms } from '../lib/cold-timing.js';
import { createBulkKeys } from '../lib/emulator-keys.js';
import { childWithEnv, exitedChildrenCpuMs, processCpuMs } from '../lib/publisher-proc.js';
import { check, type BenchOptions, type ScenarioResult } from '../lib/result.js';

const CM_LATENCY_MS = 5;
const FIRST_LIMIT_MS = 15_000;
const RERUN_LIMIT_MS = 3000;
/** Production defaults of the settings that bound a cycle's CM time (shared/config/ciphertrust-config.ts). */
const CONCURRENCY = 4;
const PAGE_SIZE = 100;

export async function runPublication(options: BenchOptions): Promise<ScenarioResult[]> {
  // key-rotated as the Knative manifests run it (min-scale = max-scale = 1: one warm process that
  // the hourly PingSource wakes). Its start-up cycle meets an empty CM (and refuses the empty set).
  // 1,000 keys selected: JWKS_MAX_KEYS at its maximum (the default 20 would refuse the set).
  const stack = await startPublisherStack('file', { env: { LOG_LEVEL: 'info', CIPHERTRUST_CONCURRENCY: String(CONCURRENCY), CIPHERTRUST_PAGE_SIZE: String(PAGE_SIZE), JWKS_MAX_KEYS: '1000' } });
  const { emulator, backend } = stack;
  try {
    const directory = backend.directory as string;
    const generation = performance.now();
    createBulkKeys(emulator.keys, options.totalKeys, options.selectedKeys);
    const generationMs = performance.now() - generation;
    const listing = performance.now();
    emulator.keys.list();
    const listRenderMs = performance.now() - listing;
    emulator.faults.setLatency(CM_LATENCY_MS);

    const pid = await childWithEnv('FUNCTION_TARGET', 'key-rotated');
    const first = await cycle(stack, pid, directory);
    const second = await cycle(stack, pid, directory);
    // The CronJob alternative (knative/examples): a new process each time, so no cache.
    const fresh = await refresh(emulator, stack.env, directory);

    const floorMs = (run: Run): number => ((run.requests.auth ?? 0) + (run.requests.list ?? 0)) * CM_LATENCY_MS + ((run.requests.get ?? 0) * CM_LATENCY_MS) / CONCURRENCY;
    const row = (run: Run): Record<string, number> => ({
      wall_ms: ms(run.wallMs),
      keys_published: run.keys,
      keys_added: run.added,
      store_files_changed: run.changed.length,
      cm_requests: Object.values(run.requests).reduce((sum, count) => sum + count, 0),
      ...Object.fromEntries(Object.entries(run.requests).map(([endpoint, count]) => [`cm_${endpoint}`, count])),
      cm_latency_floor_ms: ms(floorMs(run)),
      ...(run.publisherCpuMs !== undefined && { publisher_cpu_ms: ms(run.publisherCpuMs) }),
      emulator_cpu_ms: ms(run.emulatorCpuMs),
    });
    return [
      {
        scenario: 'publication',
        rows: [
          { subject: 'emulator set-up (not timed by the targets)', figures: { keys: options.totalKeys, selected: options.selectedKeys, generation_ms: ms(generationMs), list_render_ms: ms(listRenderMs) } },
          { subject: '(a) key-rotated, first publication (ping into an empty file store)', figures: row(first) },
          { subject: '(b) key-rotated, next ping with nothing changed', figures: row(second) },
          { subject: '(c) jwks-refresh, a new process, nothing changed (no target)', figures: row(fresh) },
        ],
        targets: [
          check('first publication (key-rotated cycle)', ms(first.wallMs), '<=', FIRST_LIMIT_MS, 'ms'),
          check('re-run with nothing changed (key-rotated cycle)', ms(second.wallMs), '<=', RERUN_LIMIT_MS, 'ms'),
          check('re-run: files changed in the store (mtime, inode, size; added, removed)', second.changed.length, '<=', 0, 'files'),
        ],
        notes: [
          `emulator: ${options.totalKeys} EC P-256 keys made with keys.create (each its own key pair), ${options.selectedKeys} labelled jwks=publish, the others app=other; ${CM_LATENCY_MS} ms added to every CM request (faults.setLatency); the list omits publickey (allowed by CM's API), so each selected key needs a GET`,
          `key-rotated on the lean host (dist/bundle/main.cjs), as knative/base/key-rotated.yaml runs it: min-scale = max-scale = 1, so the hourly ping finds it warm; CIPHERTRUST_CONCURRENCY=${CONCURRENCY} and CIPHERTRUST_PAGE_SIZE=${PAGE_SIZE} (the defaults), LOG_LEVEL=info. (a) and (b) are timed from the ping's POST to its answer, which comes when the cycle has ended`,
          '(b) re-reads the whole listing but no public key: the reader keeps the public keys of keys whose id, version and updatedAt have not changed, in memory only (a cache in the store could be planted by whoever can write the store, and would survive every later cycle)',
          `(c) the CronJob alternative (knative/examples/cronjob-jwks-refresh.yaml): a new process per run, so every public key is fetched again; wall time from spawn to exit. Informational: the manifests' publisher is key-rotated`,
          `cm_latency_floor_ms = (auth + list pages, sequential) x ${CM_LATENCY_MS} ms + gets x ${CM_LATENCY_MS} ms / ${CONCURRENCY} (parallel GETs): the least CM time the run can take at this latency. publisher_cpu_ms: key-rotated's CPU during the cycle (/proc), or jwks-refresh's. The emulator runs in the bench process; the processes share ${availableParallelism()} cores`,
          `outcomes: (a) ${first.outcome}, (b) ${second.outcome}, (c) ${fresh.outcome}${second.changed.length > 0 ? `; changed by (b): ${second.changed.slice(0, 5).join(', ')}` : ''}`,
        ],
      },
    ];
  } catch (error) {
    throw new Error(`publication: ${(error as Error).message}\nkey-rotated output (tail):\n${stack.keyRotated.output().slice(-4000)}`);
  } finally {
    await stack.close();
  }
}

interface Run {
  readonly wallMs: number;
  readonly outcome: string;
  readonly keys: number;
  readonly added: number;
  /** Store files added, removed or rewritten by the run. */
  readonly changed: readonly string[];
  readonly requests: Readonly<Record<string, number>>;
  /** CPU of the publisher process during the run; undefined without /proc. */
  readonly publisherCpuMs: number | undefined;
  /** CPU of this process meanwhile: the emulator's work (TLS, tokens, rendering keys). */
  readonly emulatorCpuMs: number;
}

/** One key-rotated cycle, started by a PingSource-style event. */
async function cycle(stack: PublisherStack, pid: number | undefined, directory: string): Promise<Run> {
  stack.emulator.clearRequests();
  const before = await snapshot(directory);
  const cpuBefore = process.cpuUsage();
  const publisherBefore = pid === undefined ? undefined : await processCpuMs(pid);
  const started = performance.now();
  const answer = await stack.ping();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const publisherAfter = pid === undefined ? undefined : await processCpuMs(pid);
  if (answer.status !== 200) throw new Error(`ping answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  const body = answer.body as { outcome: string; keys: number; added: number };
  return {
    wallMs,
    outcome: body.outcome,
    keys: body.keys,
    added: body.added,
    changed: differences(before, await snapshot(directory)),
    requests: countRequests(stack.emulator),
    publisherCpuMs: publisherBefore === undefined || publisherAfter === undefined ? undefined : publisherAfter - publisherBefore,
    emulatorCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

function countRequests(emulator: TestEmulator): Record<string, number> {
  const requests: Record<string, number> = {};
  for (const request of emulator.requests) requests[request.endpoint] = (requests[request.endpoint] ?? 0) + 1;
  return requests;
}

async function refresh(emulator: TestEmulator, env: Record<string, string>, directory: string): Promise<Run> {
  emulator.clearRequests();
  const before = await snapshot(directory);
  const childrenBefore = await exitedChildrenCpuMs();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await runRefresh([], env);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const childrenAfter = await exitedChildrenCpuMs();
  if (result.code !== 0) throw new Error(`jwks-refresh exited with ${result.code}: ${result.stdout}\n${result.stderr.slice(-4000)}`);
  const output = JSON.parse(result.stdout) as { outcome: string; keys: number; added: unknown[] };
  return {
    wallMs,
    outcome: output.outcome,
    keys: output.keys,
    added: output.added.length,
    changed: differences(before, await snapshot(directory)),
    requests: countRequests(emulator),
    publisherCpuMs: childrenBefore === undefined || childrenAfter === undefined ? undefined : childrenAfter - childrenBefore,
    emulatorCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** Every file in the store directory: name -> inode, size and mtime in ns (a rename-replace changes the inode). */
async function snapshot(directory: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await readdir(directory)) {
    const info = await stat(join(directory, name), { bigint: true });
    files.set(name, `${info.ino}/${info.size}/${info.mtimeNs}`);
  }
  return files;
}

function differences(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name) !== after.get(name)).sort();
}
