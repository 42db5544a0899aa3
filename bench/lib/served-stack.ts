import type { CmKeyResource } from '../../emulator/index.js';
import { startFunction, type RunningFunction } from '../../test/support/processes.js';
import type { PublisherStack } from '../../test/support/publisher-stack.js';
import { createProductionLikeKeys } from './emulator-keys.js';

/**
 * A publisher stack's first publication of a production-like set, and jwks-get (lean host, production
 * defaults) serving it from the stack's store. Returns the key the scenario rotates, and jwks-get
 * (the caller stops it).
 */
export async function publishAndServe(stack: PublisherStack): Promise<{ rotated: CmKeyResource; jwksGet: RunningFunction }> {
  const rotated = createProductionLikeKeys(stack.emulator.keys);
  const first = await stack.ping();
  if (first.body.outcome !== 'published') throw new Error(`first publication: ${JSON.stringify(first.body)}`);
  const jwksGet = await startFunction({ host: 'lean', target: 'jwks-get', env: stack.backend.env, waitForReady: true });
  return { rotated, jwksGet };
}
