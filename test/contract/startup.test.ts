/** Start-up behaviour: refused configurations, and the `npm start` local stack from an empty directory. */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, rawRequest } from '../support/http.js';
import { runToExit } from '../support/processes.js';
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

  it('refuses an unknown FUNCTION_TARGET without loading anything', async () => {
    const { code, output } = await runToExit({ FUNCTION_TARGET: '../../etc/passwd' });
    expect(code).toBe(78);
    expect(output).toContain('FUNCTION_TARGET');
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
      const served = async () => JSON.parse((await rawRequest(jwks, '/jwks')).body.toString()) as { keys: { kid: string; use: string }[] };
      const set = await served();
      // The seed: RSA and EC signing keys, an RSA encryption key; the AES and the unlabelled key are not published.
      expect(set.keys.map((key) => key.use).sort()).toEqual(['enc', 'sig', 'sig']);
      expect((await rawRequest(jwk, `/jwk/${set.keys[0]!.kid}`)).status).toBe(200);
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
      await eventually(async () => (await served()).keys.length === 4, 10_000);
      const rotated = await call(cm, 'POST', `/api/v1/vault/keys2/${String(created.json.id)}/versions`, { token, body: {} });
      expect(rotated.status).toBe(201);
      await eventually(async () => (await served()).keys.length === 5, 10_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((done) => child.once('exit', done));
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
