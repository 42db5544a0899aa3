/** Start-up behaviour: refused configurations, and the `npm start` local stack from an empty directory. */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, rawRequest } from '../support/http.js';
import { runToExit } from '../support/processes.js';
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
  it('generates a public demo set in ./data and serves it on both functions', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'local-stack-'));
    const [jwksPort, jwkPort] = [18000 + Math.floor(Math.random() * 1000), 19000 + Math.floor(Math.random() * 1000)];
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/scripts/local-stack.js', import.meta.url))], {
      cwd,
      env: { PATH: process.env.PATH ?? '', JWKS_GET_PORT: String(jwksPort), JWK_GET_PORT: String(jwkPort), CIPHERTRUST_PASSWORD: 'x' },
      stdio: 'ignore',
    });
    try {
      const base = `http://127.0.0.1:${jwksPort}`;
      const up = async (url: string, path: string) => (await rawRequest(url, path).catch(() => ({ status: 0 }))).status === 200;
      await eventually(async () => (await up(base, '/jwks')) && (await up(`http://127.0.0.1:${jwkPort}`, '/readyz')), 15_000);
      const set = JSON.parse((await rawRequest(base, '/jwks')).body.toString()) as { keys: { kid: string; use: string }[] };
      expect(set.keys.map((key) => key.use).sort()).toEqual(['enc', 'sig', 'sig']);
      const one = await rawRequest(`http://127.0.0.1:${jwkPort}`, `/jwk/${set.keys[0]!.kid}`);
      expect(one.status).toBe(200);
      const files = await readdir(join(cwd, 'data'));
      expect(files.sort()).toEqual([...set.keys.map((key) => `jwk-${key.kid}.json`), 'jwks.json'].sort());
      for (const file of files) expect(await readFile(join(cwd, 'data', file), 'utf8')).not.toMatch(/"(d|p|q|dp|dq|qi)":/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((done) => child.once('exit', done));
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
