import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CmKeyResource } from '../../emulator/index.js';
import { call, eventually, login } from './support.js';

// The CLI runs from dist/, built by `npm test` (as the contract tests do).
const repo = fileURLToPath(new URL('../..', import.meta.url));
const main = resolve(repo, 'dist/emulator/main.js');

interface Cli {
  readonly child: ChildProcess;
  output(): string;
  exit: Promise<number | null>;
}

function runCli(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, output: () => output, exit };
}

/** Waits for the one console line naming the URL and the CA file. */
async function started(cli: Cli): Promise<{ url: string; caFile: string; caPem: string }> {
  let match: RegExpExecArray | null = null;
  await eventually(() => {
    if (cli.child.exitCode !== null) throw new Error(`emulator exited early:\n${cli.output()}`);
    match = /ciphertrust-emulator: (https:\/\/\S+) \(trust (.+)\)\n/.exec(cli.output());
    return match !== null;
  }, 20_000);
  const [, url, caFile] = match as unknown as [string, string, string];
  return { url, caFile, caPem: await readFile(caFile, 'utf8') };
}

describe('emulator CLI', () => {
  let tlsDir: string;
  beforeEach(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'cm-emulator-cli-'));
  });
  afterEach(() => rm(tlsDir, { recursive: true, force: true }));

  test('seeds demo keys, takes credentials from the environment, logs JSON, and exits 0 on SIGTERM', async () => {
    const cli = runCli(['--port', '0', '--tls-dir', tlsDir], { CM_EMULATOR_USERNAME: 'ops', CM_EMULATOR_PASSWORD: 'pw' });
    try {
      const endpoint = await started(cli);
      expect(endpoint.caFile).toBe(join(tlsDir, 'ca.pem'));
      const listening = cli
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.event === 'listening');
      expect(listening).toMatchObject({ service: 'ciphertrust-emulator', url: endpoint.url, caFile: endpoint.caFile });
      await expect(login(endpoint)).rejects.toThrow(/401/);
      const token = await login(endpoint, 'ops', 'pw');
      const published = await call(endpoint, 'GET', '/api/v1/vault/keys2?labels=jwks=publish', { token });
      expect(published.json.total).toBe(4);
      const all = await call(endpoint, 'GET', '/api/v1/vault/keys2', { token });
      expect((all.json.resources as CmKeyResource[]).map((key) => key.algorithm).sort()).toEqual(['AES', 'EC', 'RSA', 'RSA', 'RSA']);
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  test('--no-seed starts empty and SIGINT stops it cleanly', async () => {
    const cli = runCli(['--port', '0', '--tls-dir', tlsDir, '--no-seed']);
    try {
      const endpoint = await started(cli);
      const token = await login(endpoint);
      expect((await call(endpoint, 'GET', '/api/v1/vault/keys2', { token })).json.total).toBe(0);
    } finally {
      cli.child.kill('SIGINT');
    }
    expect(await cli.exit).toBe(0);
  });

  test('--nodes 3 runs a cluster: three nodes over one key state, printed as a CIPHERTRUST_URL list', async () => {
    const cli = runCli(['--port', '0', '--tls-dir', tlsDir, '--nodes', '3']);
    try {
      const { url, caPem } = await started(cli);
      const urls = url.split(',');
      expect(new Set(urls).size).toBe(3);
      // Shared JWT validation by default: one login works on every node, and each sees the seed.
      const token = await login({ url: urls[0]!, caPem });
      for (const node of urls) expect((await call({ url: node, caPem }, 'GET', '/api/v1/vault/keys2?labels=jwks=publish', { token })).json.total).toBe(4);
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  test('--per-node-tokens: a node refuses a JWT another node issued', async () => {
    const cli = runCli(['--port', '0', '--tls-dir', tlsDir, '--nodes', '2', '--per-node-tokens', '--no-seed']);
    try {
      const { url, caPem } = await started(cli);
      const [first, second] = url.split(',') as [string, string];
      const token = await login({ url: first, caPem });
      expect((await call({ url: first, caPem }, 'GET', '/api/v1/vault/keys2', { token })).status).toBe(200);
      expect((await call({ url: second, caPem }, 'GET', '/api/v1/vault/keys2', { token })).status).toBe(401);
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exit).toBe(0);
  });

  test('a bad command line is refused with exit code 78', async () => {
    const cli = runCli(['--port', 'many', '--tls-dir', tlsDir]);
    expect(await cli.exit).toBe(78);
    expect(cli.output()).toContain('config_refused');
    const unknown = runCli(['--bogus']);
    expect(await unknown.exit).toBe(78);
    const noNodes = runCli(['--nodes', '0', '--tls-dir', tlsDir]);
    expect(await noNodes.exit).toBe(78);
    expect(noNodes.output()).toContain('--nodes must be 1-16');
  });
});
