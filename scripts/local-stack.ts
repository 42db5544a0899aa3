/**
 * `npm start`: the local stack on loopback. Serves ./data with jwks-get on 127.0.0.1:8080 and
 * jwk-get on 127.0.0.1:8081, each in its own process as in production. When ./data has no key set
 * yet, a demonstration set is generated (public halves only; see demo-key-set.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileKeySetStore } from '../shared/store/file-store.js';
import { KEY_SET_OBJECT } from '../shared/store/store.js';
import { writeDemoKeySet } from './demo-key-set.js';

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = resolve(process.cwd(), 'data');
// Ports can be moved when 8080/8081 are taken (and by the test that runs this script).
const services = [
  { target: 'jwks-get', port: Number(process.env.JWKS_GET_PORT ?? 8080), path: '/jwks' },
  { target: 'jwk-get', port: Number(process.env.JWK_GET_PORT ?? 8081), path: '/jwk/{kid}' },
];

await mkdir(dataDir, { recursive: true });
const store = new FileKeySetStore(dataDir);
if ((await store.read(KEY_SET_OBJECT, { maxBytes: 4 * 1024 * 1024 })).kind === 'missing') {
  const keys = await writeDemoKeySet(store);
  console.log(`local-stack: no key set in ${dataDir}; wrote a demo set of ${keys.length} public keys (private halves discarded)`);
}

// Serving functions must never see key-manager credentials, even on a developer's machine.
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CIPHERTRUST_')));
const children: ChildProcess[] = services.map(({ target, port }) =>
  spawn(process.execPath, [resolve(distRoot, 'functions/main.js')], {
    env: { ...childEnv, FUNCTION_TARGET: target, PORT: String(port), HOST: '127.0.0.1', JWKS_STORE: dataDir },
    stdio: 'inherit',
  }),
);
for (const { target, port, path } of services) console.log(`local-stack: ${target} on http://127.0.0.1:${port}${path}`);

let stopping = false;
function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  process.exitCode = code;
}
children.forEach((child, index) =>
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`local-stack: ${services[index]?.target} exited (${signal ?? code}); stopping`);
    stopAll(code ?? 1);
  }),
);
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));
