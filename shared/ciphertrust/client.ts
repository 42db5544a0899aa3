import { describeCmError, cmErrorCode } from './cm-error.js';
import type { Logger } from '../observability/logger.js';
import { CipherTrustError, type CipherTrustEndpoint } from './errors.js';
import { QueryMessageLog } from './query-messages.js';
import type { CipherTrustSession } from './session.js';
import type { CipherTrustRequest, CipherTrustResponse, CipherTrustTransport } from './transport.js';

/**
 * Listing passes at most. A listing of several pages needs two passes that agree, so one change
 * while it is read costs one more pass; a listing that keeps changing fails the cycle.
 */
const MAX_LIST_PASSES = 3;
/** Far above any real key count; stops a CM that keeps answering full pages forever. */
const MAX_PAGES = 10_000;

/**
 * The two CM calls publication needs: list keys by label selector, get one key. Every call carries
 * the session's JWT; a 401 drops it and the call is made once more with a fresh login.
 */
export class CipherTrustClient {
  private readonly queryMessages: QueryMessageLog;

  constructor(
    private readonly transport: CipherTrustTransport,
    private readonly session: CipherTrustSession,
    /** For CM's warnings about query parameters it did not understand (one client per process). */
    logger?: Logger,
  ) {
    this.queryMessages = new QueryMessageLog(logger);
  }

  /**
   * Every resource matching the selector (raw JSON, parsed by the caller). Pages with skip/limit
   * until `total`; CM may cap `limit`, so the next skip is what was actually received. A listing
   * that changed underneath (total moved, or duplicates/gaps across pages) is read again.
   *
   * One page is one answer. Several pages are not a snapshot, and a change between them can leave
   * no trace in a pass: a key leaving before the cursor while another is added keeps `total`, and
   * shifts every later page by one, so one live key is never seen while the one that left is. A
   * listing of several pages is therefore only used once two passes in a row list the same ids.
   */
  async listKeys(selector: string, pageSize: number): Promise<unknown[]> {
    let previous: string | undefined;
    for (let pass = 1; pass <= MAX_LIST_PASSES; pass++) {
      const listing = await this.listOnce(selector, pageSize);
      if (!listing.consistent) {
        previous = undefined;
        continue;
      }
      if (listing.pages === 1) return listing.resources;
      const ids = JSON.stringify(listing.resources.map((item) => (item as { id?: unknown } | null)?.id ?? null));
      if (ids === previous) return listing.resources;
      previous = ids;
    }
    throw new CipherTrustError('unavailable', 'keys2_list', `the key list kept changing while it was read (${MAX_LIST_PASSES} passes)`);
  }

  /**
   * One key by its CM id. `type=id` says so: without it CM infers the kind of identifier (id, name,
   * uri, slug or alias; H: Thales' Go structs), and a key whose name looks like another's id would
   * be answered instead.
   */
  async getKey(id: string): Promise<unknown> {
    const response = await this.call({ endpoint: 'keys2_get', method: 'GET', path: `/api/v1/vault/keys2/${encodeURIComponent(id)}`, query: { type: 'id' } });
    return response.body;
  }

  /** `POST /api/v1/vault/query-keys` with these criteria: the raw answer, read by the caller. */
  async queryKeys(criteria: Readonly<Record<string, unknown>>): Promise<unknown> {
    const response = await this.call({ endpoint: 'query_keys', method: 'POST', path: '/api/v1/vault/query-keys', body: criteria });
    return response.body;
  }

  private async listOnce(selector: string, pageSize: number): Promise<{ resources: unknown[]; consistent: boolean; pages: number }> {
    const resources: unknown[] = [];
    const ids = new Set<string>();
    const totals = new Set<number>();
    let duplicates = 0;
    let skip = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const response = await this.call({
        endpoint: 'keys2_list',
        method: 'GET',
        path: '/api/v1/vault/keys2',
        query: { labels: selector, skip: String(skip), limit: String(pageSize) },
      });
      const envelope = response.body as { total?: unknown; resources?: unknown; messages?: unknown } | undefined;
      // CM answers a page with nothing on it as `"resources": null` (M: kroxylicious' GetKeysResponse,
      // run against CM): an empty page, which the checks below treat like `[]`.
      const listed = envelope?.resources === null ? [] : envelope?.resources;
      if (!Array.isArray(listed) || typeof envelope?.total !== 'number') {
        throw new CipherTrustError('malformed_response', 'keys2_list', 'the key list answer has no resources array or total');
      }
      this.queryMessages.report('keys2_list', envelope.messages);
      const items: unknown[] = listed;
      totals.add(envelope.total);
      for (const item of items) {
        const id = (item as { id?: unknown } | null)?.id;
        if (typeof id === 'string' && ids.has(id)) {
          duplicates++;
          continue;
        }
        if (typeof id === 'string') ids.add(id);
        resources.push(item);
      }
      skip += items.length;
      if (items.length === 0 || skip >= envelope.total) {
        return { resources, consistent: totals.size === 1 && duplicates === 0 && resources.length === envelope.total, pages: page + 1 };
      }
    }
    throw new CipherTrustError('malformed_response', 'keys2_list', `the key list did not end within ${MAX_PAGES} pages`);
  }

  private async call(request: Omit<CipherTrustRequest, 'bearer'>): Promise<CipherTrustResponse> {
    const jwt = await this.session.jwt();
    let response = await this.transport.send({ ...request, bearer: jwt });
    if (response.status === 401) {
      // The token may have been revoked or expired early: one fresh login, then give up.
      this.session.invalidate(jwt);
      response = await this.transport.send({ ...request, bearer: await this.session.jwt() });
      if (response.status === 401) throw failure('unauthorized', request.endpoint, response);
    }
    if (response.status < 200 || response.status > 299) throw failure('rejected', request.endpoint, response);
    return response;
  }
}

function failure(kind: 'unauthorized' | 'rejected', endpoint: CipherTrustEndpoint, response: CipherTrustResponse): CipherTrustError {
  return new CipherTrustError(kind, endpoint, `CipherTrust Manager answered ${describeCmError(response)}`, {
    status: response.status,
    ...(cmErrorCode(response) !== undefined && { cmCode: cmErrorCode(response) }),
  });
}
