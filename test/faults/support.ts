/** What the fault suites share: the serving pair, the store check, and the publisher's report. */
import { validateKeySet, type PublicJwk } from '../../shared/jwks/validate.js';
import type { KeySetStore } from '../../shared/store/store.js';
import { metricValue, rawRequest } from '../support/http.js';
import { startFunction, type RunningFunction } from '../support/processes.js';
import { storeProblems, type StoreView } from '../support/store-consistency.js';

export const SIGN = 1 | 2;
export const ENCRYPT = 4 | 8;
export const PUBLISH = { jwks: 'publish' };

/** jwks-get and jwk-get in their own processes, revalidating every 100 ms, with a set loaded. */
export async function startServing(env: Record<string, string>): Promise<{ jwks: RunningFunction; jwk: RunningFunction; stop(): Promise<void> }> {
  const serving = { ...env, JWKS_REVALIDATE_MS: '100' };
  const [jwks, jwk] = await Promise.all([
    startFunction({ host: 'lean', target: 'jwks-get', env: serving, waitForReady: true }),
    startFunction({ host: 'lean', target: 'jwk-get', env: serving, waitForReady: true }),
  ]);
  return { jwks, jwk, stop: async () => void (await Promise.all([jwks.stop(), jwk.stop()])) };
}

/** Checks a store nobody writes right now and returns what it holds. */
export async function expectConsistent(store: KeySetStore): Promise<StoreView & { keys: readonly PublicJwk[] }> {
  const { problems, view } = await storeProblems(store);
  expect(problems).toEqual([]);
  return { ...view, keys: validateKeySet(view.setBytes!).keys };
}

/** Waits until jwks-get serves these bytes and jwk-get serves each of their keys. */
export async function expectServed(serving: { jwks: RunningFunction; jwk: RunningFunction }, setBytes: Buffer, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const kids = validateKeySet(setBytes).keys.map((key) => key.kid);
  const served = async (): Promise<boolean> => {
    if (!(await rawRequest(serving.jwks.url, '/jwks')).body.equals(setBytes)) return false;
    for (const kid of kids) if ((await rawRequest(serving.jwk.url, `/jwk/${kid}`)).status !== 200) return false;
    return true;
  };
  while (!(await served())) {
    if (Date.now() > deadline) throw new Error(`the serving pair does not serve ${setBytes.toString()} within ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

export interface AuditLine {
  readonly outcome: string;
  readonly failure?: string;
  readonly filesWritten: number;
  readonly filesRemoved: number;
  readonly message?: string;
}

/** The publisher's own account of its cycles: the failure counter, /readyz, the audit records. */
export function publisherReport(keyRotated: RunningFunction): {
  failedCycles(): Promise<number>;
  readiness(): Promise<{ status: string; problem: { failure: string | null; message: string | null } | null }>;
  audits(): AuditLine[];
} {
  return {
    async failedCycles() {
      const text = (await rawRequest(keyRotated.url, '/metrics')).body.toString();
      return metricValue(text, 'jwks_publisher_publications_total{outcome="failed"}');
    },
    async readiness() {
      return JSON.parse((await rawRequest(keyRotated.url, '/readyz')).body.toString()) as Awaited<ReturnType<ReturnType<typeof publisherReport>['readiness']>>;
    },
    audits: () =>
      keyRotated
        .output()
        .split('\n')
        .filter((line) => line.includes('"audit":true'))
        .map((line) => JSON.parse(line) as AuditLine),
  };
}
