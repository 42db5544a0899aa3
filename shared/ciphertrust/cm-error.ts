import type { CipherTrustResponse } from './transport.js';

const MAX_DESCRIPTION = 200;

/**
 * A one-line account of a CM error answer for logs: status, codeDesc and message of CM's error
 * body (`{"code": 16, "codeDesc": "NCERRResourceNotFound: ..."}`), shortened and stripped of
 * control characters. CM error bodies hold no credentials; the request is never echoed.
 */
export function describeCmError(response: CipherTrustResponse): string {
  const body = response.body as { codeDesc?: unknown; message?: unknown } | undefined;
  const parts = [body?.codeDesc, body?.message].filter((part): part is string => typeof part === 'string' && part !== '');
  const text = parts.join(': ').replace(/[^\x20-\x7e]/g, ' ');
  const shortened = text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION)}...` : text;
  return shortened === '' ? `status ${response.status}` : `status ${response.status} (${shortened})`;
}

/** CM's numeric error code, when the body has one. */
export function cmErrorCode(response: CipherTrustResponse): number | undefined {
  const code = (response.body as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
