/**
 * `npm start`: the whole pipeline on loopback, each function in its own process as in production.
 *
 *   CipherTrust Manager emulator  https://127.0.0.1:9443   (seeded; user admin / admin)
 *     └─ posts a CloudEvent on every key change to
 *   key-rotated                   http://127.0.0.1:8082/   publishes into ./data
 *   jwks-get                      http://127.0.0.1:8080/jwks, /.well-known/openid-configuration
 *   jwk-get                       http://127.0.0.1:8081/jwk/{kid}, {kid}.pem, {kid}.crt
 *
 * The emulator's keys are new on every start, so the first publication is made with
 * `jwks-refresh --confirm-removal`: it replaces whatever set a previous run left in ./data.
 * Development only: the emulator is never part of the runtime image.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedDemoCertificates, seedDemoKeys, startEmulator, type RunningEmulator } from '../emulator/index.js';

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = resolve(process.cwd(), 'data');
const tlsDir = resolve(process.cwd(), '.local/ciphertrust-emulator');
const port = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
// Ports can be moved when the defaults are taken (and by the test that runs this script).
const ports = {
  emulator: port('CM_EMULATOR_PORT', 9443),
  keyRotated: port('KEY_ROTATED_PORT', 8082),
  jwksGet: port('JWKS_GET_PORT', 8080),
  jwkGet: port('JWK_GET_PORT', 8081),
};
const username = process.env.CM_EMULATOR_USERNAME ?? 'admin';
const password = process.env.CM_EMULATOR_PASSWORD ?? 'admin';
const keyRotatedUrl = `http://127.0.0.1:${ports.keyRotated}`;

// The functions get a clean environment: nothing from the developer's shell but PATH and LOG_LEVEL.
const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', JWKS_STORE: dataDir };
await mkdir(dataDir, { recursive: true });
const emulator: RunningEmulator = await startEmulator({
  port: ports.emulator,
  tlsDir,
  users: { [username]: password },
  eventSink: `${keyRotatedUrl}/`,
});
const children: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  process.exitCode = code;
  void emulator.close();
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

function spawnFunction(target: string, listenPort: number, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [resolve(distRoot, 'bundle/main.cjs')], {
    env: { ...baseEnv, ...env, FUNCTION_TARGET: target, PORT: String(listenPort), HOST: '127.0.0.1' },
    stdio: 'inherit',
  });
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`local-stack: ${target} exited (${signal ?? code}); stopping`);
    stopAll(code ?? 1);
  });
  children.push(child);
  return child;
}

function run(script: string, args: string[], env: Record<string, string>): Promise<number | null> {
  const child = spawn(process.execPath, [resolve(distRoot, script), ...args], { env: { ...baseEnv, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((done) => child.on('exit', done));
}

async function waitForHealth(url: string): Promise<void> {
  for (let attempt = 0; attempt < 200 && !stopping; attempt++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`${url} did not become healthy`);
}

const seeded = seedDemoKeys(emulator.keys);
// The bank's PKI for the demo keys' certificates: its root is the publisher's trust anchor.
const pki = await seedDemoCertificates(emulator.keys, resolve(process.cwd(), '.local/bank-pki'));
console.log(`local-stack: CipherTrust Manager emulator on ${emulator.url} (user ${username}; CA ${emulator.caFile}); ${seeded.length + 2} demo keys, ${pki.certificates.length} certificates (anchor ${pki.anchorFile})`);

const publisherEnv = {
  CIPHERTRUST_URL: emulator.url,
  CIPHERTRUST_CA_FILE: emulator.caFile,
  CIPHERTRUST_USERNAME: username,
  CIPHERTRUST_PASSWORD: password,
  JWKS_CERT_TRUST_ANCHORS: pki.anchorFile,
};
const first = await run('bin/jwks-refresh.js', ['--confirm-removal'], publisherEnv);
if (first !== 0) {
  console.error(`local-stack: the first publication failed (jwks-refresh exit ${first}); stopping`);
  stopAll(1);
} else {
  spawnFunction('key-rotated', ports.keyRotated, publisherEnv);
  // Discovery as a partner would see it, the issuer being jwks-get itself (loopback http is allowed).
  const jwksGetUrl = `http://127.0.0.1:${ports.jwksGet}`;
  spawnFunction('jwks-get', ports.jwksGet, { JWKS_ISSUER: jwksGetUrl, JWKS_PUBLIC_URL: `${jwksGetUrl}/jwks` });
  spawnFunction('jwk-get', ports.jwkGet, {});
  try {
    await Promise.all([waitForHealth(keyRotatedUrl), waitForHealth(`http://127.0.0.1:${ports.jwksGet}`), waitForHealth(`http://127.0.0.1:${ports.jwkGet}`)]);
  } catch (error) {
    if (!stopping) {
      console.error(`local-stack: ${(error as Error).message}; stopping`);
      stopAll(1);
    }
  }
  if (!stopping) console.log(`local-stack: key-rotated on ${keyRotatedUrl}/ publishing into ${dataDir}`);
  if (!stopping) console.log(`local-stack: jwks-get on http://127.0.0.1:${ports.jwksGet}/jwks`);
  if (!stopping) console.log(`local-stack: jwk-get on http://127.0.0.1:${ports.jwkGet}/jwk/{kid}`);
}
