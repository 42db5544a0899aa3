/**
 * Start-up behaviour: refused configurations, the serving functions' start-up log lines (pino
 * loaded after the first answer), and the `npm start` local stack from an empty directory.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, rawRequest } from '../support/http.js';
import { freePort, runToExit, startFunction } from '../support/processes.js';
import { publish } from '../support/backends.js';
import { ecKey } from '../support/keys.js';
import { FileKeySetStore } from '../../shared/store/file-store.js';
import { call, login } from '../emulator/support.js';
import { fileURLToPath } from 'node:url';

describe('configuration at start', () => {
  it('exits with 78 and one log line naming every bad variable', async () => {
    const { code, output } = await runToExit({
      FUNCTION_TARGET: 'jwks-get',
      JWKS_MAX_AGE: 'forever',
      JWKS_STORE: 'ftp://files/jwks',
      CIPHERTRUST_PASSWORD: 'do-not-print-me',
    });
    expect(code).toBe(78);
    const line = JSON.parse(output.trim().split('\n').pop()!) as { level: string; event: string; problems: string[] };
    expect(line).toMatchObject({ level: 'fatal', event: 'config_refused' });
    expect(line.problems.map((problem) => problem.split(' ')[0]).sort()).toEqual(['CIPHERTRUST_PASSWORD', 'JWKS_MAX_AGE', 'JWKS_STORE']);
    expect(output).not.toContain('do-not-print-me');
  });

  it('refuses discovery half configured, or on plain http to a remote host, naming the variable (exit 78)', async () => {
    for (const [env, named] of [
      [{ JWKS_ISSUER: 'https://auth.bank.example' }, 'JWKS_PUBLIC_URL must be set when JWKS_ISSUER is'],
      [{ JWKS_ISSUER: 'http://auth.bank.example', JWKS_PUBLIC_URL: 'https://partners.bank.example/jwks' }, 'JWKS_ISSUER must use https://'],
    ] as const) {
      const { code, output } = await runToExit({ FUNCTION_TARGET: 'jwks-get', ...env });
      expect(code).toBe(78);
      const line = JSON.parse(output.trim().split('\n').pop()!) as { event: string; problems: string[] };
      expect(line.event).toBe('config_refused');
      expect(line.problems).toEqual([expect.stringContaining(named)]);
    }
  });

  it('refuses an unknown FUNCTION_TARGET without loading anything', async () => {
    const { code, output } = await runToExit({ FUNCTION_TARGET: '../../etc/passwd' });
    expect(code).toBe(78);
    expect(output).toContain('FUNCTION_TARGET');
  });
});

type LogLine = { level: string; time: string; event: string; msg: string };

function logLines(output: string): LogLine[] {
  return output
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

describe('start-up log lines of a serving function on the lean host (pino loads after the first answer)', () => {
  let store: string;
  beforeAll(async () => {
    store = await mkdtemp(join(tmpdir(), 'jwks-startup-logs-'));
    await publish(new FileKeySetStore(store), [(await ecKey('P-256')).jwk]);
  });
  afterAll(() => rm(store, { recursive: true, force: true }));

  it('writes every start-up line once the first set is out, in order, each with the time it was logged', async () => {
    const fn = await startFunction({ host: 'lean', target: 'jwks-get', env: { JWKS_STORE: `file://${store}` } });
    try {
      await eventually(async () => (await rawRequest(fn.url, '/jwks')).status === 200, 5_000);
      const answered = Date.now();
      await eventually(() => Promise.resolve(logLines(fn.output()).some((line) => line.event === 'key_set_loaded')), 5_000);
      const lines = logLines(fn.output());
      expect(lines.map((line) => line.event)).toEqual(['starting', 'listening', 'key_set_loaded']);
      const times = lines.map((line) => Date.parse(line.time));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      // Logged while starting, before the answer: written later, the times are still theirs.
      expect(times.at(-1)!).toBeLessThanOrEqual(answered);
    } finally {
      await fn.stop();
    }
  });

  it('writes them within a second when no set is asked for', async () => {
    const fn = await startFunction({ host: 'lean', target: 'jwk-get', env: { JWKS_STORE: `file://${store}` } });
    try {
      await eventually(() => Promise.resolve(logLines(fn.output()).filter((line) => ['starting', 'listening', 'key_set_loaded'].includes(line.event)).length === 3), 5_000);
    } finally {
      await fn.stop();
    }
  });

  it('writes what it holds before exiting on SIGTERM, the shutdown line last', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/bundle/main.cjs', import.meta.url))], {
      env: { PATH: process.env.PATH ?? '', FUNCTION_TARGET: 'jwks-get', JWKS_STORE: `file://${store}`, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', done));
    // Terminated as soon as it listens: no request, and long before the logger's deadline.
    await eventually(async () => (await rawRequest(`http://127.0.0.1:${port}`, '/healthz').catch(() => ({ status: 0 }))).status === 200, 10_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const events = logLines(output).map((line) => line.event);
    expect(events).toEqual(expect.arrayContaining(['starting', 'listening', 'shutdown']));
    expect(events.at(-1)).toBe('shutdown');
  });

  it('logs a port it cannot bind and exits 1', async () => {
    const fn = await startFunction({ host: 'lean', target: 'jwks-get', env: { JWKS_STORE: `file://${store}` } });
    try {
      const port = new URL(fn.url).port;
      const { code, output } = await runToExit({ FUNCTION_TARGET: 'jwks-get', JWKS_STORE: `file://${store}`, PORT: port, HOST: '127.0.0.1' });
      expect(code).toBe(1);
      expect(logLines(output).find((line) => line.event === 'listen_failed')).toMatchObject({ level: 'fatal', msg: `jwks-get cannot listen on port ${port}` });
    } finally {
      await fn.stop();
    }
  });
});

describe('npm start (local stack)', () => {
  it('publishes the seeded emulator keys, serves them, and publishes a key created through the CM API', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'local-stack-'));
    const base = 18000 + Math.floor(Math.random() * 1000) * 4;
    const ports = { CM_EMULATOR_PORT: base, KEY_ROTATED_PORT: base + 1, JWKS_GET_PORT: base + 2, JWK_GET_PORT: base + 3 };
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/scripts/local-stack.js', import.meta.url))], {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])) },
      stdio: 'ignore',
    });
    try {
      const jwks = `http://127.0.0.1:${ports.JWKS_GET_PORT}`;
      const jwk = `http://127.0.0.1:${ports.JWK_GET_PORT}`;
      const up = async (url: string, path: string) => (await rawRequest(url, path).catch(() => ({ status: 0 }))).status === 200;
      await eventually(async () => (await up(jwks, '/jwks')) && (await up(jwk, '/readyz')) && (await up(`http://127.0.0.1:${ports.KEY_ROTATED_PORT}`, '/healthz')), 30_000);
      const served = async () => JSON.parse((await rawRequest(jwks, '/jwks')).body.toString()) as { keys: { kid: string; use: string; x5c?: string[] }[] };
      const set = await served();
      // The seed: RSA and EC P-256/384/521 signing keys, an RSA encryption key; the AES and the unlabelled key are not published.
      expect(set.keys.map((key) => key.use).sort()).toEqual(['enc', 'sig', 'sig', 'sig', 'sig']);
      // Every signing key carries its chain (leaf, issuing CA), verifying up to the local bank root.
      const root = new X509Certificate(await readFile(join(cwd, '.local/bank-pki/root.pem'), 'utf8'));
      for (const key of set.keys.filter((candidate) => candidate.use === 'sig')) {
        const [leaf, issuing] = (key.x5c ?? []).map((der) => new X509Certificate(Buffer.from(der, 'base64')));
        expect(leaf !== undefined && issuing !== undefined && leaf.verify(issuing.publicKey) && issuing.verify(root.publicKey)).toBe(true);
      }
      expect((await rawRequest(jwk, `/jwk/${set.keys[0]!.kid}`)).status).toBe(200);
      // Discovery names jwks-get itself; every signing key has its PEM and certificate.
      expect(JSON.parse((await rawRequest(jwks, '/.well-known/openid-configuration')).body.toString())).toEqual({
        issuer: jwks,
        jwks_uri: `${jwks}/jwks`,
        id_token_signing_alg_values_supported: ['ES256', 'ES384', 'ES512', 'RS256'],
      });
      for (const key of set.keys.filter((candidate) => candidate.use === 'sig')) {
        expect((await rawRequest(jwk, `/jwk/${key.kid}.pem`)).status).toBe(200);
        expect((await rawRequest(jwk, `/jwk/${key.kid}.crt`)).status).toBe(200);
      }
      const files = await readdir(join(cwd, 'data'));
      expect(files.sort()).toEqual([...set.keys.map((key) => `jwk-${key.kid}.json`), 'jwks-sources.json', 'jwks.json'].sort());
      for (const file of files) expect(await readFile(join(cwd, 'data', file), 'utf8')).not.toMatch(/"(d|p|q|dp|dq|qi)":/);

      // As the README shows with curl: log in, create a signing key with the label, watch /jwks.
      const cm = { url: `https://127.0.0.1:${ports.CM_EMULATOR_PORT}`, caPem: await readFile(join(cwd, '.local/ciphertrust-emulator/ca.pem'), 'utf8') };
      const token = await login(cm);
      const created = await call(cm, 'POST', '/api/v1/vault/keys2', {
        token,
        body: { name: 'partner-signing-2027', algorithm: 'ec', curveid: 'secp384r1', usageMask: 3, labels: { jwks: 'publish' } },
      });
      expect(created.status).toBe(201);
      await eventually(async () => (await served()).keys.length === 6, 10_000);
      const rotated = await call(cm, 'POST', `/api/v1/vault/keys2/${String(created.json.id)}/versions`, { token, body: {} });
      expect(rotated.status).toBe(201);
      await eventually(async () => (await served()).keys.length === 7, 10_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((done) => child.once('exit', done));
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
