/** Why a stored key set (or one key in it) was refused. Stable strings: they are metric labels. */
export const REFUSAL_REASONS = [
  'not_utf8',
  'malformed_json',
  'invalid_shape',
  'private_key_material',
  'unsupported_kty',
  'unexpected_member',
  'invalid_kid',
  'duplicate_kid',
  'invalid_use',
  'invalid_alg',
  'invalid_key_material',
  'weak_key',
  'certificate_mismatch',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A key set that must not be served. `security` marks a refusal that the SIEM must see. */
export class KeySetRefusedError extends Error {
  override readonly name = 'KeySetRefusedError';
  readonly security: boolean;

  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    // A certificate that does not certify the key it sits on was planted or mixed up: the SIEM's.
    this.security = reason === 'private_key_material' || reason === 'certificate_mismatch';
  }
}
