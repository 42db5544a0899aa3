import type { PublisherConfig } from '../config/publisher-config.js';
import { CipherTrustClient } from '../ciphertrust/client.js';
import { CipherTrustKeyReader } from '../ciphertrust/key-reader.js';
import { CipherTrustSession } from '../ciphertrust/session.js';
import { CipherTrustTransport } from '../ciphertrust/transport.js';
import type { Logger } from '../observability/logger.js';
import { PublisherMetrics } from '../observability/publisher-metrics.js';
import { openStore } from '../store/open-store.js';
import type { KeySetStore } from '../store/store.js';
import { PublicationCycle } from './publication-cycle.js';

export interface Publisher {
  readonly cycle: PublicationCycle;
  readonly metrics: PublisherMetrics;
  readonly store: KeySetStore;
  /** Releases sockets (CM keep-alive connections, S3 client) so a one-shot process can exit. */
  close(): void;
}

/** Wires CM access, the store and the cycle from a validated configuration. */
export function createPublisher(config: PublisherConfig, logger: Logger, options: { defaultMetrics: boolean } = { defaultMetrics: true }): Publisher {
  const cm = config.ciphertrust;
  const metrics = new PublisherMetrics(options);
  const transport = new CipherTrustTransport({
    baseUrl: cm.url,
    caPem: cm.caPem,
    clientCertPem: cm.clientCertPem,
    clientKeyPem: cm.clientKeyPem,
    timeoutMs: cm.timeoutMs,
    retry: { maxAttempts: cm.maxAttempts, budgetMs: cm.retryBudgetMs, baseDelayMs: 250, maxDelayMs: 5000 },
    maxSockets: cm.concurrency + 1,
    observe: (endpoint, status, seconds) => metrics.ciphertrustRequest(endpoint, status, seconds),
  });
  const session = new CipherTrustSession(transport, cm.grant, cm.domain);
  const reader = new CipherTrustKeyReader(new CipherTrustClient(transport, session, logger), {
    selector: cm.keySelector,
    pageSize: cm.pageSize,
    concurrency: cm.concurrency,
  });
  const store = openStore(config.store);
  const cycle = new PublicationCycle({
    reader,
    store,
    logger,
    observer: metrics,
    retainDeactivatedMs: config.retainDeactivatedMs,
    allowEmpty: config.allowEmpty,
    maxSetBytes: config.maxSetBytes,
  });
  return {
    cycle,
    metrics,
    store,
    close: () => {
      transport.close();
      store.close?.();
    },
  };
}
