/**
 * Issue 6, publication at scale: a CipherTrust Manager (the emulator, 5 ms per request) holding
 * `totalKeys` keys of which `selectedKeys` carry jwks=publish. Times the jwks-refresh CLI, a real
 * process, (a) publishing into an empty file store and (b) running again with nothing changed,
 * which must write nothing. Counts the CM requests of each run.
 */
import { stat, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openBackend } from '../../test/support/backends.js';
import { startTestEmulator, type TestEmulator } from '../../test/emulator/support.js';
import { runRefresh } from '../../test/support/processes.js';
import { PUBLISHER_PASSWORD, PUBLISHER_USER, publisherEnv } from '../../test/support/publisher-stack.js';
import { ms } from '../lib/cold-timing.js';
import { createBulkKeys } from '../lib/emulator-keys.js';
import { exitedChildrenCpuMs } from '../lib/publisher-proc.js';
import { check, type BenchOptions, type ScenarioResult } from '../lib/result.js';

const CM_LATENCY_MS = 5;
const FIRST_LIMIT_MS = 15_000;
const RERUN_LIMIT_MS = 3000;
/** Production defaults of the settings that bound a cycle's CM time (shared/config/ciphertrust-config.ts). */
const CONCURRENCY = 4;
const PAGE_SIZE = 100;

interface RefreshRun {
  readonly wallMs: number;
  readonly outcome: string;
  readonly keys: number;
  readonly added: number;
  readonly filesWritten: number;
  readonly requests: Readonly<Record<string, number>>;
  /** CPU of the jwks-refresh process; undefined without /proc. */
  readonly cliCpuMs: number | undefined;
  /** CPU of this process meanwhile: the emulator's work (TLS, tokens, rendering keys). */
  readonly emulatorCpuMs: number;
}

export async function runPublication(options: BenchOptions): Promise<ScenarioResult[]> {
  const emulator = await startTestEmulator({ users: { admin: 'admin', [PUBLISHER_USER]: PUBLISHER_PASSWORD } });
  let backend;
  try {
    backend = await openBackend('file');
    const directory = backend.directory as string;
    const generation = performance.now();
    createBulkKeys(emulator.keys, options.totalKeys, options.selectedKeys);
    const generationMs = performance.now() - generation;
    const listing = performance.now();
    emulator.keys.list();
    const listRenderMs = performance.now() - listing;
    emulator.faults.setLatency(CM_LATENCY_MS);
    const env = publisherEnv(emulator, backend, { LOG_LEVEL: 'info', CIPHERTRUST_CONCURRENCY: String(CONCURRENCY), CIPHERTRUST_PAGE_SIZE: String(PAGE_SIZE) });

    const first = await refresh(emulator, env);
    const before = await snapshot(directory);
    const second = await refresh(emulator, env);
    const changed = differences(before, await snapshot(directory));

    const floorMs = (run: RefreshRun): number => ((run.requests.auth ?? 0) + (run.requests.list ?? 0)) * CM_LATENCY_MS + ((run.requests.get ?? 0) * CM_LATENCY_MS) / CONCURRENCY;
    const listRenderingMs = (run: RefreshRun): number => (run.requests.list ?? 0) * listRenderMs;
    const row = (run: RefreshRun): Record<string, number> => ({
      wall_ms: ms(run.wallMs),
      keys_published: run.keys,
      keys_added: run.added,
      files_written: run.filesWritten,
      cm_requests: Object.values(run.requests).reduce((sum, count) => sum + count, 0),
      ...Object.fromEntries(Object.entries(run.requests).map(([endpoint, count]) => [`cm_${endpoint}`, count])),
      cm_latency_floor_ms: ms(floorMs(run)),
      ...(run.cliCpuMs !== undefined && { cli_cpu_ms: ms(run.cliCpuMs) }),
      emulator_cpu_ms: ms(run.emulatorCpuMs),
      emulator_list_rendering_est_ms: ms(listRenderingMs(run)),
    });
    const whereTimeGoes = (name: string, run: RefreshRun): string =>
      `${name}: ${ms(run.wallMs)} ms wall; its parts (they overlap, so no sum): CM latency floor ${ms(floorMs(run))} ms (${run.requests.list ?? 0} list pages in sequence, ${run.requests.get ?? 0} GETs ${CONCURRENCY} at a time)` +
      `; jwks-refresh CPU ${run.cliCpuMs === undefined ? '?' : ms(run.cliCpuMs)} ms (start-up, TLS, PEM parsing, JWK validation, file writes)` +
      `; emulator CPU ${ms(run.emulatorCpuMs)} ms in the bench process, of which about ${ms(listRenderingMs(run))} ms render all ${options.totalKeys} keys once per list page. The two processes share ${availableParallelism()} cores`;
    return [
      {
        scenario: 'publication',
        rows: [
          { subject: 'emulator set-up (not timed by the targets)', figures: { keys: options.totalKeys, selected: options.selectedKeys, generation_ms: ms(generationMs), list_render_ms: ms(listRenderMs) } },
          { subject: '(a) jwks-refresh, first publication into an empty file store', figures: row(first) },
          { subject: '(b) jwks-refresh again, nothing changed', figures: { ...row(second), store_files_changed: changed.length } },
        ],
        targets: [
          check('first publication (jwks-refresh wall time)', ms(first.wallMs), '<=', FIRST_LIMIT_MS, 'ms'),
          check('re-run with nothing changed (jwks-refresh wall time)', ms(second.wallMs), '<=', RERUN_LIMIT_MS, 'ms'),
          check('re-run: files changed in the store (mtime, inode, size; added, removed)', changed.length, '<=', 0, 'files'),
        ],
        notes: [
          `emulator: ${options.totalKeys} EC P-256 keys made with keys.create (each its own key pair), ${options.selectedKeys} labelled jwks=publish, the others app=other; ${CM_LATENCY_MS} ms added to every CM request (faults.setLatency)`,
          `jwks-refresh as a process (node dist/bin/jwks-refresh.js, wall time from spawn to exit) with test/support's publisherEnv, LOG_LEVEL=info, CIPHERTRUST_CONCURRENCY=${CONCURRENCY} and CIPHERTRUST_PAGE_SIZE=${PAGE_SIZE} (the defaults); a new process has no cache, so (b) reads CM as much as (a)`,
          `cm_latency_floor_ms = (auth + list pages, sequential) x ${CM_LATENCY_MS} ms + gets x ${CM_LATENCY_MS} ms / ${CONCURRENCY} (parallel GETs): the least CM time the run can take at this latency`,
          `list_render_ms: the emulator renders (PEM export) and sorts all ${options.totalKeys} keys on every list page request before filtering (emulator/objects.ts list()): an emulator cost, paid once per page on top of the ${CM_LATENCY_MS} ms`,
          `(a) outcome ${first.outcome}, (b) outcome ${second.outcome}${changed.length > 0 ? `; changed by (b): ${changed.slice(0, 5).join(', ')}` : ''}`,
          whereTimeGoes('(a)', first),
          whereTimeGoes('(b)', second),
        ],
      },
    ];
  } finally {
    await emulator.stop();
    await backend?.close();
  }
}

async function refresh(emulator: TestEmulator, env: Record<string, string>): Promise<RefreshRun> {
  emulator.clearRequests();
  const childrenBefore = await exitedChildrenCpuMs();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await runRefresh([], env);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const childrenAfter = await exitedChildrenCpuMs();
  if (result.code !== 0) throw new Error(`jwks-refresh exited with ${result.code}: ${result.stdout}\n${result.stderr.slice(-4000)}`);
  const output = JSON.parse(result.stdout) as { outcome: string; keys: number; added: unknown[]; filesWritten: number };
  const requests: Record<string, number> = {};
  for (const request of emulator.requests) requests[request.endpoint] = (requests[request.endpoint] ?? 0) + 1;
  return {
    wallMs,
    outcome: output.outcome,
    keys: output.keys,
    added: output.added.length,
    filesWritten: output.filesWritten,
    requests,
    cliCpuMs: childrenBefore === undefined || childrenAfter === undefined ? undefined : childrenAfter - childrenBefore,
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
