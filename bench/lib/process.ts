/**
 * The servers the load scenarios measure, each in its own process with its pid known (for the
 * memory sampler). Not test/support/processes.ts's startFunction: it finds dist/ and node_modules/
 * from its own file, which once compiled is dist/test/support/, so it would look in dist/dist/.
 * Paths here are found from the compiled bench (dist/bench/lib/) and through Node's resolution.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, leanHostArgs, manifestNodeOptionsEnv, type HostKind } from '../../test/support/processes.js';
import { pollUntil } from './cold-timing.js';

export interface BenchServer {
  readonly subject: string;
  /** http://127.0.0.1:<port>, no trailing slash. */
  readonly url: string;
  readonly pid: number;
  /** The end of what the process wrote (stdout and stderr), for error messages. */
  output(): string;
  /** SIGTERM, SIGKILL after 3 s; resolves once the process has exited. Safe to call twice. */
  stop(): Promise<void>;
}

export interface ServerSpec {
  readonly subject: string;
  readonly command: string;
  readonly args: readonly string[];
  /** The whole environment of the process (nothing is inherited). */
  readonly env: Record<string, string>;
  readonly port: number;
  /** Polled until it answers 200. */
  readonly readyPath: string;
}

const OUTPUT_KEPT = 64 * 1024;
const START_TIMEOUT_MS = 15_000;

export async function startServer(spec: ServerSpec): Promise<BenchServer> {
  const child = spawn(spec.command, [...spec.args], { env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEPT);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const spawned = new Promise<void>((done, fail) => {
    child.once('spawn', done);
    child.once('error', fail);
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
  };
  await spawned;
  const url = `http://127.0.0.1:${spec.port}`;
  try {
    await pollUntil(url, spec.readyPath, (response) => response.status === 200, {
      intervalMs: 50,
      timeoutMs: START_TIMEOUT_MS,
      abort: () => (child.exitCode === null ? undefined : `exited with code ${child.exitCode}`),
    });
  } catch (error) {
    await stop();
    throw new Error(`${spec.subject} did not start: ${(error as Error).message}\n${output}`);
  }
  return { subject: spec.subject, url, pid: child.pid as number, output: () => output, stop };
}

export type ServedTarget = 'jwks-get' | 'jwk-get';

/** A serving function on the lean host (dist/bundle/main.cjs, what the image runs) or on functions-framework's. */
export async function startServingFunction(host: HostKind, target: ServedTarget, env: Record<string, string>): Promise<BenchServer> {
  if (host === 'lean') return startLeanFunction(target, env, '/readyz');
  const port = await freePort();
  const source = fileURLToPath(new URL(`../../functions/${target}/index.js`, import.meta.url));
  const framework = join(dirname(createRequire(import.meta.url).resolve('@google-cloud/functions-framework')), 'main.js');
  return startServer({
    subject: `${target} (functions-framework)`,
    command: process.execPath,
    args: [framework, `--target=${target}`, `--source=${source}`, `--port=${port}`],
    env: { ...baseEnv(), ...env, FUNCTION_TARGET: target, PORT: String(port), HOST: '127.0.0.1' },
    port,
    readyPath: '/readyz',
  });
}

/**
 * Any function as deployed: the image's CMD (the lean host) with the NODE_OPTIONS its Knative
 * manifest sets, so a flag added to a manifest is measured here too.
 */
export async function startLeanFunction(target: string, env: Record<string, string>, readyPath: string): Promise<BenchServer> {
  const port = await freePort();
  return startServer({
    subject: `${target} (lean host)`,
    command: process.execPath,
    args: leanHostArgs(),
    env: { ...baseEnv(), ...manifestNodeOptionsEnv(target), ...env, FUNCTION_TARGET: target, PORT: String(port), HOST: '127.0.0.1' },
    port,
    readyPath,
  });
}

/** The least Node.js can do to serve the bytes (bench/lib/cold-bare-server.ts): an anchor row. */
export async function startBareNode(bodyFile: string): Promise<BenchServer> {
  const port = await freePort();
  return startServer({
    subject: 'bare node:http (bench/lib/cold-bare-server.ts)',
    command: process.execPath,
    args: [fileURLToPath(new URL('./cold-bare-server.js', import.meta.url))],
    env: { ...baseEnv(), JWKS_FILE: bodyFile, PORT: String(port), HOST: '127.0.0.1' },
    port,
    readyPath: '/jwks',
  });
}

/**
 * The anchor that sends a function's own answer (bench/lib/same-response-server.ts); `responseFile`
 * holds serializeCapturedResponse's output. It runs under the function's own V8 flags (the image
 * CMD's and its manifest's NODE_OPTIONS), so that our code is the only difference between the two:
 * without them, the anchor grew a young generation up to sixteen times the function's.
 */
export async function startSameResponseServer(responseFile: string, of: ServedTarget): Promise<BenchServer> {
  const port = await freePort();
  const v8Flags = leanHostArgs().filter((arg) => arg.startsWith('-'));
  return startServer({
    subject: `bare node:http, ${of}'s bytes and headers and V8 flags`,
    command: process.execPath,
    args: [...v8Flags, fileURLToPath(new URL('./same-response-server.js', import.meta.url))],
    env: { ...baseEnv(), ...manifestNodeOptionsEnv(of), ANCHOR_RESPONSE: responseFile, PORT: String(port), HOST: '127.0.0.1' },
    port,
    readyPath: '/',
  });
}

export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' };
}

/** Full path of an executable found in PATH or the sbin directories; undefined when absent. */
export function findExecutable(name: string): string | undefined {
  const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const directory of directories.filter((entry) => entry !== '')) {
    try {
      accessSync(join(directory, name), constants.X_OK);
      return join(directory, name);
    } catch {
      // not here
    }
  }
  return undefined;
}
