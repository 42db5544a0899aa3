/**
 * CipherTrust Manager error bodies. Two shapes are documented (reference, confidence M):
 *   404 {"code":16,"codeDesc":"NCERRResourceNotFound: Resource not found"}
 *   401 {"code":5,"codeDesc":"NCERRUnauthorizedAccess","message":"...","requestID":"..."}
 * The other codes (9 invalid parameter, 15 bad request, 11 conflict, ...) come from third-party
 * fakes and guesswork (L); clients must key on the HTTP status, never on `code`.
 */
import { randomUUID } from 'node:crypto';

export interface CmErrorBody {
  code: number;
  codeDesc: string;
  message?: string;
  requestID?: string;
}

/** Thrown by the key model, auth and routing; the server turns it into a CM error body. */
export class CmError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly codeDesc: string,
    /** The `message` member of the body, when there is one. */
    readonly detail?: string,
    /** Extra response headers (Allow on 405). */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? codeDesc);
    this.name = 'CmError';
  }

  body(): CmErrorBody {
    // The documented 404 body carries neither message nor requestID; the 401 body has both.
    if (this.status === 404) return { code: this.code, codeDesc: this.codeDesc };
    const body: CmErrorBody = { code: this.code, codeDesc: this.codeDesc };
    if (this.detail !== undefined) body.message = this.detail;
    body.requestID = randomUUID();
    return body;
  }
}

export function notFound(): CmError {
  return new CmError(404, 16, 'NCERRResourceNotFound: Resource not found');
}

export function unauthorized(message: string): CmError {
  return new CmError(401, 5, 'NCERRUnauthorizedAccess', message);
}

export function invalidParam(message: string): CmError {
  return new CmError(400, 9, `NCERRInvalidParamValue: ${message}`, message);
}

export function badRequest(message: string): CmError {
  return new CmError(400, 15, `NCERRBadRequest: ${message}`, message);
}

/**
 * A create with a name already taken. The codeDesc is CM's (M: Thales' Ansible module_utils tells
 * it apart by `NCERRKeyAlreadyExists` in codeDesc, alongside `NCERRConflict`); the status (409)
 * and the numeric code are guesses (L).
 */
export function keyAlreadyExists(name: string): CmError {
  return new CmError(409, 11, 'NCERRKeyAlreadyExists: Key already exists', `key with name ${name} already exists`);
}

export function conflict(message: string): CmError {
  return new CmError(409, 11, `NCERRConflict: ${message}`, message);
}

export function methodNotAllowed(allowed: readonly string[]): CmError {
  return new CmError(405, 15, 'NCERRMethodNotAllowed: Method not allowed', 'Method not allowed', { Allow: allowed.join(', ') });
}

export function payloadTooLarge(limit: number): CmError {
  return new CmError(413, 15, 'NCERRRequestEntityTooLarge: Request body too large', `Request body exceeds ${limit} bytes`);
}

/** A CM-looking body for an injected failure of any status (codes are guesses, L). */
export function injectedFailure(status: number): CmError {
  const known: Record<number, [number, string]> = {
    400: [15, 'NCERRBadRequest'],
    401: [5, 'NCERRUnauthorizedAccess'],
    403: [3, 'NCERRForbidden'],
    404: [16, 'NCERRResourceNotFound: Resource not found'],
    409: [11, 'NCERRConflict'],
    429: [29, 'NCERRTooManyRequests'],
    500: [1, 'NCERRInternalServerError'],
    502: [1, 'NCERRBadGateway'],
    503: [1, 'NCERRServiceUnavailable'],
    504: [1, 'NCERRGatewayTimeout'],
  };
  const [code, codeDesc] = known[status] ?? [1, 'NCERRInternalServerError'];
  return new CmError(status, code, codeDesc, 'Injected fault (ciphertrust emulator)');
}

export function internalError(): CmError {
  return new CmError(500, 1, 'NCERRInternalServerError', 'Internal server error');
}
