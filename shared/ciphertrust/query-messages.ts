import type { Logger } from '../observability/logger.js';
import type { CipherTrustEndpoint } from './errors.js';

/** Distinct messages remembered at most: a CM that words each answer differently cannot grow memory. */
const MAX_REMEMBERED = 100;
/** Characters of one message logged at most (CM's wording, not ours: never trusted to be short). */
const MAX_LENGTH = 300;

/**
 * CM lists query parameters it did not support or understand in a listing's `messages` array (H:
 * `PagingInfo.Messages` in Thales' Go structs). The answer is still a 200, possibly not filtered as
 * asked, so each distinct message is logged once per process as a structured warning: enough for
 * an operator to see a CM that ignores `labels`, without a line on every cycle.
 */
export class QueryMessageLog {
  private readonly seen = new Set<string>();

  constructor(private readonly logger: Logger | undefined) {}

  report(endpoint: CipherTrustEndpoint, messages: unknown): void {
    if (!Array.isArray(messages)) return;
    for (const raw of messages) {
      if (typeof raw !== 'string' || raw === '') continue;
      const message = raw.length > MAX_LENGTH ? `${raw.slice(0, MAX_LENGTH)}...` : raw;
      if (this.seen.has(message) || this.seen.size >= MAX_REMEMBERED) continue;
      this.seen.add(message);
      this.logger?.warn(
        { event: 'ciphertrust_query_not_understood', endpoint, cmMessage: message },
        'CipherTrust Manager did not understand a query parameter; its answer may not be filtered as asked (logged once)',
      );
    }
  }
}
