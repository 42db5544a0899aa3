import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { finalStage, parseContainerfile } from './containerfile.js';

export type HostKind = 'lean' | 'functions-framework';

// test/support/ under jest; dist/test/support/ when compiled (the benchmark imports these helpers).
const repo = fileURLToPath(new URL(import.meta.url.includes('/dist/test/') ? '../../..' : '../..', import.meta.url));

/**
 * Node's arguments in the image's CMD (Containerfile), paths resolved in this repository: the
 * tests and the benchmark run the lean host exactly as the image does, V8 flags included.
 */
export function leanHostArgs(bundleCopy?: string): string[] {
  const runtime = finalStage(parseContainerfile(readFileSync(resolve(repo, 'Containerfile'), 'utf8')));
  if (runtime.cmd?.form !== 'exec' || runtime.cmd.argv[0] !== 'node') throw new Error('the Containerfile CMD is not exec-form node');
  const bundle = bundleCopy ?? resolve(repo, BUNDLE_DIR);
  return runtime.cmd.argv.slice(1).map((arg) => (arg.startsWith('-') ? arg : arg.startsWith(`${BUNDLE_DIR}/`) ? resolve(bundle, arg.slice(BUNDLE_DIR.length + 1)) : resolve(repo, arg)));
}

/**
 * NODE_OPTIONS that a function's Knative Service sets (knative/base/<target>.yaml), if any: the
 * tests and the benchmark run each function with it, as deployed.
 */
export function manifestNodeOptions(target: string): string | undefined {
  // The base manifests, or the example for a function deployed only where needed (event-relay).
  const file = ['knative/base', 'knative/examples'].map((directory) => resolve(repo, directory, `${target}.yaml`)).find((candidate) => existsSync(candidate));
  if (file === undefined) return undefined;
  type Service = { spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } } };
  for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const containers = (document.toJS() as Service | null)?.spec?.template?.spec?.containers ?? [];
    const entry = containers.flatMap((container) => container.env ?? []).find((variable) => variable.name === 'NODE_OPTIONS');
    if (entry !== undefined) return entry.value;
  }
  return undefined;
}

/** `{ NODE_OPTIONS }` as a function's manifest sets it, or nothing: to spread into a process's environment. */
export function manifestNodeOptionsEnv(target: string): Record<string, string> {
  const nodeOptions = manifestNodeOptions(target);
  return nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions };
}

/** Where the image keeps the bundle, relative to its app root and to this repository. */
const BUNDLE_DIR = 'dist/bundle';

/**
 * A copy of the bundle any user may read, for a process started under another uid: the checkout
 * may sit where only root can read (CI clones under /root). The bundle needs nothing beside it.
 */
export function readableBundleCopy(): string {
  const copy = mkdtempSync(join(tmpdir(), 'jwks-bundle-'));
  chmodSync(copy, 0o755);
  cpSync(resolve(repo, BUNDLE_DIR), copy, { recursive: true });
  return copy;
}

/** A function running in its own process, as in production, listening on loopback. */
export interface RunningFunction {
  readonly url: string;
  /** The process id (for /proc/<pid>/status: memory figures). */
  readonly pid: number;
  /** Everything the process wrote so far (stdout and stderr), for log assertions. */
  output(): string;
  /**
   * Resolves once the start-up lines are out: jwks-get and jwk-get hold their lines until their
   * logger loads (after the first answer with keys, or a second after start). Await it before
   * asserting that something is absent from output().
   */
  logsWritten(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly host: HostKind;
  readonly target: 'jwks-get' | 'jwk-get' | 'key-rotated' | 'event-dead-letter' | 'event-relay';
  readonly env: Record<string, string>;
  /** Wait until /readyz answers 200 (a set is loaded) instead of only /healthz. */
  readonly waitForReady?: boolean;
  /** Run as this user and group (the tests run as root; an unprivileged writer meets EACCES). */
  readonly uid?: number;
  readonly gid?: number;
  /** Run the bundle from this copy (readableBundleCopy()) instead of the checkout. */
  readonly bundleCopy?: string;
  /** Listen on this port (from freePort()) when the environment must name it, as JWKS_ISSUER does; else a free one. */
  readonly port?: number;
}

const SERVING_TARGETS: readonly string[] = ['jwks-get', 'jwk-get'];

/** Runs the function, bundled (dist/bundle, what the image runs) or on functions-framework (dist/functions), with only the environment given; `npm test` builds both. */
export async function startFunction(options: StartOptions): Promise<RunningFunction> {
  const port = options.port ?? (await freePort());
  const nodeOptions = options.host === 'lean' ? manifestNodeOptions(options.target) : undefined;
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production', ...(nodeOptions !== undefined && { NODE_OPTIONS: nodeOptions }), ...options.env };
  const child = spawn(process.execPath, hostArgs(options.host, options.target, port, options.bundleCopy), {
    env: { ...env, FUNCTION_TARGET: options.target, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid !== undefined && { uid: options.uid }),
    ...(options.gid !== undefined && { gid: options.gid }),
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  // The lean host logs `listening` through the function's logger; on functions-framework the
  // serving functions' first line is `starting` (the other functions log at once).
  const firstLine = options.host === 'lean' ? '"event":"listening"' : SERVING_TARGETS.includes(options.target) ? '"event":"starting"' : '';
  const logsWritten = async (): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!output.includes(firstLine)) {
      if (Date.now() > deadline) throw new Error(`${options.target} wrote no ${firstLine} line within 10 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const running: RunningFunction = { url, pid: child.pid ?? 0, output: () => output, logsWritten, stop: () => stop(child) };
  try {
    await waitFor(url + (options.waitForReady === true ? '/readyz' : '/healthz'), child);
  } catch (error) {
    await running.stop();
    throw new Error(`${options.target} (${options.host}) did not start: ${String(error)}\n${output}`);
  }
  return running;
}

export interface RefreshResult {
  readonly code: number | null;
  /** The signal that ended the run (SIGKILL for a run killed mid-publication), or null. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the jwks-refresh CLI (bundled, as the image has it) to completion with only the environment given. */
export function runRefresh(args: string[], env: Record<string, string>): Promise<RefreshResult> {
  return startRefresh(args, env).result;
}

/** Starts the jwks-refresh CLI; its pid lets a test kill it from outside at a moment it picks. */
export function startRefresh(args: string[], env: Record<string, string>): { pid: number; result: Promise<RefreshResult> } {
  const child = spawn(process.execPath, [resolve(repo, 'dist/bundle/jwks-refresh.cjs'), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<RefreshResult>((done) => child.on('close', (code, signal) => done({ code, signal, stdout, stderr })));
  if (child.pid === undefined) throw new Error('jwks-refresh did not start');
  return { pid: child.pid, result };
}

/** The node arguments that host a function: the lean host as the image runs it, or functions-framework's CLI. */
function hostArgs(host: HostKind, target: string, port: number, bundleCopy?: string): string[] {
  if (host === 'lean') return leanHostArgs(bundleCopy);
  return [
    resolve(repo, 'node_modules/@google-cloud/functions-framework/build/src/main.js'),
    `--target=${target}`,
    `--source=${resolve(repo, 'dist/functions', target, 'index.js')}`,
    `--port=${port}`,
  ];
}

/**
 * Runs a host to completion (for configuration errors): the lean host by default, whose target is
 * env.FUNCTION_TARGET; functions-framework is given that target on its command line.
 */
export async function runToExit(env: Record<string, string>, host: HostKind = 'lean'): Promise<{ code: number | null; output: string }> {
  const port = host === 'lean' ? 0 : await freePort();
  const child = spawn(process.execPath, hostArgs(host, env.FUNCTION_TARGET ?? '', port), {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // A process that should have refused to start and serves instead is killed (code null): at once
  // when it says it listens (lean host, functions-framework), else after 15 s.
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
    if (/"event":"listening"|Serving function\.\.\./.test(output)) child.kill('SIGKILL');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((done) => child.on('exit', done));
  clearTimeout(timer);
  return { code, output };
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`no 200 from ${url} within 15 s`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** A port nothing listens on right now, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? done(address.port) : fail(new Error('no port'))));
    });
  });
}
