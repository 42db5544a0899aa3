/**
 * Issue 6, cold start: from spawning the process to the first 200 on GET /jwks, for jwks-get on
 * the lean host, on functions-framework's host (a row, no target), and for a bare node:http server
 * that serves the same jwks.json (the baseline). Each start is polled every 5 ms with a fresh
 * connection; hosts take turns, in a rotating order, so drift on the machine hits them alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { KEY_SET_OBJECT } from '../../shared/store/store.js';
import { freePort, leanHostArgs, manifestNodeOptions, manifestNodeOptionsEnv } from '../../test/support/processes.js';
import { pollUntil, summary } from '../lib/cold-timing.js';
import { fileStoreWith, productionLikeKeys } from '../lib/fixture.js';
import { check, type BenchOptions, type ScenarioResult } from '../lib/result.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const POLL_INTERVAL_MS = 5;
const START_TIMEOUT_MS = 15_000;
const TARGET_RATIO = 1.5;

interface Host {
  readonly subject: string;
  /** Node arguments for a process that will listen on `port`. */
  args(port: number): string[];
  /** Variables of its own beyond the common ones. */
  readonly env?: () => Record<string, string>;
}

/** As deployed: the image's CMD with the NODE_OPTIONS of jwks-get's manifest, whose flags a start pays for. */
const LEAN: Host = {
  subject: "jwks-get, lean host (the image's CMD: dist/bundle/main.cjs)",
  args: () => leanHostArgs(),
  env: () => manifestNodeOptionsEnv('jwks-get'),
};
const BARE: Host = { subject: 'bare node:http server (bench/lib/cold-bare-server.ts)', args: () => [resolve(repo, 'dist/bench/lib/cold-bare-server.js')] };
const FRAMEWORK: Host = {
  subject: 'jwks-get, functions-framework host',
  args: (port) => [
    resolve(repo, 'node_modules/@google-cloud/functions-framework/build/src/main.js'),
    '--target=jwks-get',
    `--source=${resolve(repo, 'dist/functions/jwks-get/index.js')}`,
    `--port=${port}`,
  ],
};

export async function runColdStart(options: BenchOptions): Promise<ScenarioResult[]> {
  const { directory, body } = await fileStoreWith(await productionLikeKeys());
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    FUNCTION_TARGET: 'jwks-get',
    JWKS_STORE: `file://${directory}`,
    JWKS_FILE: join(directory, KEY_SET_OBJECT),
  };
  const hosts = [LEAN, BARE, FRAMEWORK];
  const samples = new Map<Host, number[]>(hosts.map((host) => [host, []]));
  try {
    // One start of each first, not counted: it pays for the page cache (node, dist/, node_modules).
    for (const host of hosts) await timeStart(host, env);
    for (let round = 0; round < options.coldStarts; round++) {
      for (let turn = 0; turn < hosts.length; turn++) {
        const host = hosts[(round + turn) % hosts.length] as Host;
        samples.get(host)?.push(await timeStart(host, env));
      }
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const figures = new Map(hosts.map((host) => [host, summary(samples.get(host) ?? [], [50, 90])]));
  const median = (host: Host): number => figures.get(host)?.p50_ms ?? Number.NaN;
  const ratio = Math.round((median(LEAN) / median(BARE)) * 100) / 100;
  return [
    {
      scenario: 'cold-start',
      rows: hosts.map((host) => ({ subject: host.subject, figures: figures.get(host) ?? {} })),
      targets: [check('cold start: lean host median / bare server median', ratio, '<=', TARGET_RATIO, 'x')],
      notes: [
        `spawn() to the first 200 on GET /jwks, polled every ${POLL_INTERVAL_MS} ms with a new connection (agent: false); ${options.coldStarts} starts per host, taking turns in a rotating order, after one uncounted warm-up start each`,
        `key set: ${body.length} bytes (bench/lib/fixture.ts), file store; NODE_ENV=production, default settings otherwise; the lean host with the image's CMD (${leanHostArgs().filter((arg) => arg.startsWith('-')).join(' ') || 'no node flag'}) and jwks-get's manifest NODE_OPTIONS (${manifestNodeOptions('jwks-get') ?? 'none'}); the functions-framework row has no target`,
        `median ratio lean / bare = ${ratio} (framework / bare = ${Math.round((median(FRAMEWORK) / median(BARE)) * 100) / 100})`,
      ],
    },
  ];
}

/** Milliseconds from spawn() to the first 200 on /jwks; the process is killed afterwards. */
async function timeStart(host: Host, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, host.args(port), { env: { ...env, ...host.env?.(), PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const served = await pollUntil(`http://127.0.0.1:${port}`, '/jwks', (response) => response.status === 200, {
      intervalMs: POLL_INTERVAL_MS,
      timeoutMs: START_TIMEOUT_MS,
      abort: () => (child.exitCode === null ? undefined : `exited with code ${child.exitCode}`),
    });
    return served - started;
  } catch (error) {
    throw new Error(`${host.subject} did not serve /jwks: ${(error as Error).message}\n${output}`);
  } finally {
    await kill(child);
  }
}

/** SIGKILL: the measured part is over, and a graceful drain would only slow the next start. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGKILL');
  await exited;
}
