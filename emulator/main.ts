/**
 * `node dist/emulator/main.js [--port 9443] [--host 127.0.0.1] [--tls-dir DIR] [--event-sink URL] [--no-seed] [--nodes N [--per-node-tokens]]`
 * Runs the CipherTrust Manager emulator for the local stack; with `--nodes N`, a cluster of N nodes
 * on ports PORT, PORT+1, ... (CIPHERTRUST_URL takes the comma-separated list it prints). Credentials come from
 * CM_EMULATOR_USERNAME / CM_EMULATOR_PASSWORD (default admin/admin); clients trust `<tls-dir>/ca.pem`.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/observability/logger.js';
import { seedDemoKeys, startEmulator, startEmulatorCluster } from './index.js';

const EX_CONFIG = 78;
const logger = createLogger({ service: 'ciphertrust-emulator', level: process.env.LOG_LEVEL ?? 'info' });

let args;
try {
  args = parseArgs({
    options: {
      port: { type: 'string', default: '9443' },
      host: { type: 'string', default: '127.0.0.1' },
      'tls-dir': { type: 'string', default: './.local/ciphertrust-emulator' },
      'event-sink': { type: 'string' },
      'no-seed': { type: 'boolean', default: false },
      nodes: { type: 'string', default: '1' },
      'per-node-tokens': { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (error) {
  logger.fatal({ event: 'config_refused', reason: error instanceof Error ? error.message : String(error) }, 'bad command line');
  process.exit(EX_CONFIG);
}

const port = Number(args.port);
const sink = args['event-sink'];
const problems: string[] = [];
if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`--port must be 0-65535, got ${args.port}`);
if (sink !== undefined && !URL.canParse(sink)) problems.push('--event-sink must be a URL');
const nodes = Number(args.nodes);
if (!/^\d+$/.test(args.nodes) || nodes < 1 || nodes > 16) problems.push(`--nodes must be 1-16, got ${args.nodes}`);
if (problems.length > 0) {
  logger.fatal({ event: 'config_refused', problems }, 'bad command line');
  process.exit(EX_CONFIG);
}

const options = {
  host: args.host,
  port,
  tlsDir: resolve(args['tls-dir']),
  users: { [process.env.CM_EMULATOR_USERNAME ?? 'admin']: process.env.CM_EMULATOR_PASSWORD ?? 'admin' },
  eventSink: sink,
  logger,
};
// One node stays exactly the single emulator; a cluster only when asked for.
const emulator = nodes === 1 ? await startEmulator(options) : await startEmulatorCluster({ ...options, nodes, sharedTokens: !args['per-node-tokens'] });
if (!args['no-seed']) {
  const seeded = seedDemoKeys(emulator.keys);
  logger.info({ event: 'seeded', keys: seeded.map(({ name, id }) => ({ name, id })) }, `seeded ${seeded.length} demo keys`);
}
console.log(`ciphertrust-emulator: ${emulator.url} (trust ${emulator.caFile})`);

let stopping = false;
function stop(signal: string): void {
  if (stopping) return;
  stopping = true;
  logger.info({ event: 'shutdown', signal }, 'stopping');
  emulator.close().then(
    () => {
      process.exitCode = 0;
    },
    (error: unknown) => {
      logger.error({ event: 'shutdown_failed', reason: String(error) }, 'close failed');
      process.exitCode = 1;
    },
  );
}
process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
