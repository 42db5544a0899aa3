import type { PublisherConfig } from '../config/publisher-config.js';
import { CipherTrustClient } from '../ciphertrust/client.js';
import { KeyChangeQuery } from '../ciphertrust/key-changes.js';
import { CipherTrustKeyReader } from '../ciphertrust/key-reader.js';
import { CipherTrustSession } from '../ciphertrust/session.js';
import { CipherTrustTransport } from '../ciphertrust/transport.js';
import type { Logger } from '../observability/logger.js';
import { PublisherMetrics } from '../observability/publisher-metrics.js';
import { openStore } from '../store/open-store.js';
import type { KeySetStore } from '../store/store.js';
import { ChangeCheck } from './change-check.js';
import { PublicationCycle } from './publication-cycle.js';

export interface Publisher {
  readonly cycle: PublicationCycle;
  readonly metrics: PublisherMetrics;
  readonly store: KeySetStore;
  /** The frequent check between full reconciles; every read the cycle makes feeds it. */
  readonly changeCheck: ChangeCheck;
  /** Releases sockets (CM keep-alive connections, S3 client) so a one-shot process can exit. */
  close(): void;
  /**
   * On the way out: revokes the CM refresh token this process's password login obtained, waiting
   * at most `deadlineMs`. Best effort, logged, never throws.
   */
  signOut(deadlineMs?: number): Promise<void>;
}

/** Long enough for one CM round trip, short enough for a pod's termination grace period. */
const SIGN_OUT_DEADLINE_MS = 2000;

/** Wires CM access, the store and the cycle from a validated configuration. */
export function createPublisher(config: PublisherConfig, logger: Logger, options: { defaultMetrics: boolean } = { defaultMetrics: true }): Publisher {
  const cm = config.ciphertrust;
  const metrics = new PublisherMetrics(options);
  metrics.setCaps(config.maxKeys, config.maxSetBytes);
  const transport = new CipherTrustTransport({
    nodes: cm.urls,
    nodeDownMs: cm.nodeDownMs,
    onNodeChange: ({ node, state, reason }) => {
      metrics.ciphertrustNodeChanged(node, state);
      if (state === 'down') logger.warn({ event: 'ciphertrust_node_down', node, reason }, 'a CipherTrust Manager node failed; the other nodes are tried first for now');
      else logger.info({ event: 'ciphertrust_node_up', node }, 'a CipherTrust Manager node answers again');
    },
    caPem: cm.caPem,
    clientCertPem: cm.clientCertPem,
    clientKeyPem: cm.clientKeyPem,
    timeoutMs: cm.timeoutMs,
    retry: { maxAttempts: cm.maxAttempts, budgetMs: cm.retryBudgetMs, baseDelayMs: 250, maxDelayMs: 5000 },
    maxSockets: cm.concurrency + 1,
    observe: (endpoint, status, seconds) => metrics.ciphertrustRequest(endpoint, status, seconds),
  });
  const session = new CipherTrustSession(transport, cm.grant, cm.domain, Date.now, logger);
  const client = new CipherTrustClient(transport, session, logger);
  const changeCheck = new ChangeCheck({ changes: new KeyChangeQuery(client), logger, observer: metrics, retainDeactivatedMs: config.retainDeactivatedMs });
  const keyReader = new CipherTrustKeyReader(client, {
    selector: cm.keySelector,
    pageSize: cm.pageSize,
    concurrency: cm.concurrency,
  });
  const reader = {
    read: async () => {
      const read = await keyReader.read();
      changeCheck.observe(read.keys);
      return read;
    },
  };
  const store = openStore(config.store);
  const cycle = new PublicationCycle({
    reader,
    store,
    logger,
    // The change check learns each cycle's end, to adopt its read as the new baseline.
    observer: {
      cycleFinished: (outcome, seconds, at) => {
        metrics.cycleFinished(outcome, seconds, at);
        changeCheck.cycleFinished(outcome);
      },
      guardRefused: (guard) => metrics.guardRefused(guard),
      keySkipped: (reason) => metrics.keySkipped(reason),
      keysPublished: (keys, bytes) => metrics.keysPublished(keys, bytes),
      keysKeptUnreadable: (count) => metrics.keysKeptUnreadable(count),
      keysKeptUnknownState: (count) => metrics.keysKeptUnknownState(count),
      certificatesRefused: (problems) => metrics.certificatesRefused(problems),
    },
    retainDeactivatedMs: config.retainDeactivatedMs,
    allowEmpty: config.allowEmpty,
    maxSetBytes: config.maxSetBytes,
    maxKeys: config.maxKeys,
    certificateAnchors: config.certificateAnchors,
  });
  return {
    cycle,
    metrics,
    store,
    changeCheck,
    close: () => {
      transport.close();
      store.close?.();
    },
    signOut: (deadlineMs = SIGN_OUT_DEADLINE_MS) => signOut(session, logger, deadlineMs),
  };
}

async function signOut(session: CipherTrustSession, logger: Logger, deadlineMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), deadlineMs);
    timer.unref();
  });
  const outcome = await Promise.race([session.revokeRefreshToken(), deadline]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    logger.warn({ event: 'ciphertrust_refresh_token_revocation_failed', reason: `no answer within ${deadlineMs} ms` }, 'gave up revoking our CipherTrust Manager refresh token');
  }
}
