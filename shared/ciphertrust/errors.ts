/** The CM calls we make, as metric labels. */
export type CipherTrustEndpoint = 'auth_tokens' | 'auth_revoke' | 'keys2_list' | 'keys2_get' | 'query_keys';

/**
 * Why a CipherTrust Manager call failed. `unavailable` and `timeout` were retried until the budget
 * ran out; `unauthorized` survived one re-authentication; `rejected` is any other 4xx (never
 * retried); `tls` is a certificate the CA does not vouch for (not retried); `malformed_response`
 * is a 2xx we could not understand.
 */
export type CipherTrustFailure = 'unavailable' | 'timeout' | 'network' | 'tls' | 'unauthorized' | 'rejected' | 'malformed_response';

/** A failed CM call. The message never holds a credential or a token: it is logged as is. */
export class CipherTrustError extends Error {
  override readonly name = 'CipherTrustError';

  constructor(
    readonly failure: CipherTrustFailure,
    readonly endpoint: CipherTrustEndpoint,
    message: string,
    readonly details: { readonly status?: number; readonly cmCode?: number; readonly attempts?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
