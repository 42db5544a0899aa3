/** Compact JWS serialization (RFC 7515 7.1), independent of where the signature comes from. */

/** Header members a caller may not set: they are the signer's, or would point verifiers elsewhere. */
const RESERVED_HEADER_MEMBERS: ReadonlySet<string> = new Set(['alg', 'kid', 'jku', 'jwk', 'x5u', 'x5c', 'crit', 'b64']);

export interface ProtectedHeader {
  readonly alg: string;
  readonly kid: string;
  readonly [member: string]: unknown;
}

export function protectedHeader(alg: string, kid: string, extra: Readonly<Record<string, unknown>> = {}): ProtectedHeader {
  for (const member of Object.keys(extra)) {
    if (RESERVED_HEADER_MEMBERS.has(member)) throw new TypeError(`the header member "${member}" is set by the signer or not supported`);
  }
  return { ...extra, alg, kid };
}

export function signingInput(header: ProtectedHeader, payload: Buffer): string {
  return `${base64url(JSON.stringify(header))}.${payload.toString('base64url')}`;
}

export function compactJws(input: string, signature: Buffer): string {
  return `${input}.${signature.toString('base64url')}`;
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
