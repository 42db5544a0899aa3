/**
 * npm run bench: every measurement of issue 6, one after the other (never in parallel: they would
 * measure each other), each against its anchor measured in the same run. Prints a table, writes
 * bench/results/latest.json, exits 1 when a target is missed.
 *   BENCH_QUICK=1      short smoke run (figures not meaningful)
 *   BENCH_ONLY=a,b     only these scenarios (throughput, rotation-under-load, cold-start, propagation, publication, eventing, sustained-memory, scheduled-rotation)
 *   BENCH_SUSTAINED_SECONDS=n  seconds of load per server in sustained-memory (default 90)
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, ScenarioResult } from './lib/result.js';
import { runColdStart } from './scenarios/cold-start.js';
import { runEventing } from './scenarios/eventing.js';
import { runPropagation } from './scenarios/propagation.js';
import { runPublication } from './scenarios/publication.js';
import { runRotationUnderLoad } from './scenarios/rotation-under-load.js';
import { runScheduledRotation } from './scenarios/scheduled-rotation.js';
import { runSustainedMemory } from './scenarios/sustained-memory.js';
import { runThroughput } from './scenarios/throughput.js';

const SCENARIOS: Readonly<Record<string, (options: BenchOptions) => Promise<ScenarioResult[]>>> = {
  throughput: runThroughput,
  'rotation-under-load': runRotationUnderLoad,
  'cold-start': runColdStart,
  propagation: runPropagation,
  publication: runPublication,
  eventing: runEventing,
  'sustained-memory': runSustainedMemory,
  'scheduled-rotation': runScheduledRotation,
};

const quick = process.env.BENCH_QUICK === '1';
const options: BenchOptions = {
  loadSeconds: quick ? 2 : 10,
  connections: 50,
  coldStarts: quick ? 3 : 10,
  rotations: quick ? 3 : 20,
  totalKeys: quick ? 1000 : 10_000,
  selectedKeys: quick ? 100 : 1000,
  sustainedSeconds: sustainedSeconds(process.env.BENCH_SUSTAINED_SECONDS, quick ? 5 : 90),
  quick,
};

const only = process.env.BENCH_ONLY?.split(',').map((name) => name.trim()).filter((name) => name !== '');
for (const name of only ?? []) if (!(name in SCENARIOS)) throw new Error(`BENCH_ONLY: unknown scenario ${name} (${Object.keys(SCENARIOS).join(', ')})`);

const results: ScenarioResult[] = [];
const started = new Date();
for (const [name, run] of Object.entries(SCENARIOS)) {
  if (only !== undefined && !only.includes(name)) continue;
  console.log(`\n== ${name} ==`);
  const at = Date.now();
  try {
    results.push(...(await run(options)));
  } catch (error) {
    // A scenario that cannot run is a failed target, not a crashed bench: the others still run.
    results.push({ scenario: name, rows: [], targets: [{ target: `${name} ran`, value: 0, limit: 1, comparison: '>=', unit: 'ok', pass: false }], notes: [`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`] });
  }
  console.log(`(${((Date.now() - at) / 1000).toFixed(1)} s)`);
}

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  loadAverageAtEnd: loadavg().map((value) => Math.round(value * 100) / 100),
  node: process.version,
  wrk: versionOf('wrk', ['--version']),
  nginx: versionOf('/usr/sbin/nginx', ['-v']),
};
printTable(results);
const failed = results.flatMap((result) => result.targets.filter((target) => !target.pass));
const report = { startedAt: started.toISOString(), quick, options, machine, results, passed: failed.length === 0 };
const directory = fileURLToPath(new URL('../../bench/results/', import.meta.url));
await mkdir(directory, { recursive: true });
await writeFile(`${directory}latest.json`, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\n${failed.length === 0 ? 'all targets met' : `${failed.length} target(s) missed`}; written to bench/results/latest.json`);
process.exitCode = failed.length === 0 ? 0 : 1;

function printTable(all: readonly ScenarioResult[]): void {
  for (const result of all) {
    console.log(`\n${result.scenario}`);
    for (const row of result.rows) {
      const figures = Object.entries(row.figures).map(([key, value]) => `${key} ${format(value)}`);
      console.log(`  ${row.subject.padEnd(34)} ${figures.join('  ')}`);
    }
    for (const target of result.targets) {
      console.log(`  ${target.pass ? 'PASS' : 'FAIL'}  ${target.target}: ${format(target.value)} ${target.unit} (target ${target.comparison} ${format(target.limit)})`);
    }
    for (const note of result.notes) console.log(`  note: ${note}`);
  }
}

function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 100 ? Math.round(value).toString() : (Math.round(value * 100) / 100).toString();
}

function sustainedSeconds(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < 4 || seconds > 3600) throw new Error(`BENCH_SUSTAINED_SECONDS: ${JSON.stringify(value)} is not a whole number of seconds from 4 to 3600`);
  return seconds;
}

function versionOf(command: string, args: string[]): string {
  // nginx -v prints to stderr (and exits 0), wrk --version to stdout (and exits 1).
  const run = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.error !== undefined) return 'not installed';
  const output = run.stdout.trim() !== '' ? run.stdout : run.stderr;
  return output.split('\n')[0]?.trim() || 'unknown';
}
