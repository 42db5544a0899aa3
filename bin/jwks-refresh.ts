#!/usr/bin/env node
/**
 * jwks-refresh: one publication cycle, with key-rotated's configuration (CIPHERTRUST_*, JWKS_*),
 * for operators and for a plain Kubernetes CronJob where Knative Eventing is absent. The result
 * is one JSON document on stdout; logs (audit record included) go to stderr.
 */
import { pino } from 'pino';
import { parseArgs } from 'node:util';
import { ConfigError } from '../shared/config/env.js';
import { loadPublisherConfig } from '../shared/config/publisher-config.js';
import { EXIT_CONFIG } from '../shared/config/exit-on-config-error.js';
import { createLogger } from '../shared/observability/logger.js';
import { createPublisher } from '../shared/publisher/create-publisher.js';
import type { CycleResult } from '../shared/publisher/publication-cycle.js';

/** Exit codes, documented in README.md. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  ciphertrust: 3,
  store: 4,
  refused: 5,
  config: EXIT_CONFIG,
} as const;

const USAGE = `usage: jwks-refresh [--dry-run] [--confirm-removal]

Runs one publication cycle: reads the public keys from CipherTrust Manager and rewrites the
published key set (JWKS_STORE), with the same configuration and guards as key-rotated.

  --dry-run          print what would be added and removed; write nothing
  --confirm-removal  allow a publication that removes more than half of the published keys
                     (the operator's decision is recorded in the audit log)

exit codes: 0 published or unchanged (or dry run passed the guards), 1 unexpected error,
2 usage, 3 CipherTrust Manager failure, 4 storage failure, 5 refused by a guard,
78 configuration refused`;

function exitCodeOf(result: CycleResult): number {
  if (result.outcome === 'refused') return EXIT.refused;
  if (result.outcome !== 'failed') return EXIT.ok;
  if (result.failure === 'ciphertrust') return EXIT.ciphertrust;
  if (result.failure === 'store') return EXIT.store;
  return EXIT.internal;
}

async function main(argv: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args: argv,
      options: { 'dry-run': { type: 'boolean' }, 'confirm-removal': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`jwks-refresh: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (flags.help === true) {
    console.log(USAGE);
    return EXIT.ok;
  }
  let config;
  try {
    config = loadPublisherConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const logger = createLogger({ service: 'jwks-refresh', level: 'info', destination: pino.destination({ dest: 2, sync: true }) });
    logger.fatal({ event: 'config_refused', problems: error.problems }, error.message);
    return EXIT.config;
  }
  const logger = createLogger({ service: 'jwks-refresh', level: config.logLevel, destination: pino.destination({ dest: 2, sync: true }) });
  const publisher = createPublisher(config, logger, { defaultMetrics: false });
  try {
    const dryRun = flags['dry-run'] === true;
    const result = await publisher.cycle.run([{ kind: 'cli' }], { dryRun, confirmRemoval: flags['confirm-removal'] === true });
    console.log(JSON.stringify({ dryRun, ...result }, null, 2));
    return exitCodeOf(result);
  } finally {
    // A run logs in once: its refresh token would otherwise stay live in CM forever (one per run).
    await publisher.signOut();
    publisher.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error('jwks-refresh: unexpected error', error);
    process.exitCode = EXIT.internal;
  },
);
