/**
 * Errors of the internal apps' HSM module. Messages name labels, kids and PKCS#11 return values,
 * never key material, PINs or plaintext.
 */
export class HsmError extends Error {
  override readonly name: string = 'HsmError';
}

/** The module is misconfigured: the PKCS#11 library, the token or the PIN. */
export class HsmConfigurationError extends HsmError {
  override readonly name = 'HsmConfigurationError';
}

/** The token holds no usable key for the label (and kid) asked for. */
export class KeyNotFoundError extends HsmError {
  override readonly name = 'KeyNotFoundError';
}

/** Several keys match and the caller did not say which (give the kid). */
export class AmbiguousKeyError extends HsmError {
  override readonly name = 'AmbiguousKeyError';

  constructor(
    message: string,
    readonly kids: readonly string[],
  ) {
    super(message);
  }
}

/** The algorithm is not one this module implements, or does not fit the key. */
export class UnsupportedAlgorithmError extends HsmError {
  override readonly name = 'UnsupportedAlgorithmError';
}

/** The token refused the mechanism or its parameters (e.g. RSA-OAEP with SHA-256 on SoftHSM2 2.6). */
export class MechanismNotSupportedError extends HsmError {
  override readonly name = 'MechanismNotSupportedError';

  constructor(
    message: string,
    readonly pkcs11Code: string,
  ) {
    super(message);
  }
}

/** The token failed an operation for another reason (session lost twice, device error, ...). */
export class TokenOperationError extends HsmError {
  override readonly name = 'TokenOperationError';

  constructor(
    message: string,
    readonly pkcs11Code: string | undefined,
  ) {
    super(message);
  }
}

/** The JWE is not well formed or asks for something we do not accept. Safe to tell the sender. */
export class JweInvalidError extends HsmError {
  override readonly name = 'JweInvalidError';
}

/**
 * Decryption failed. Deliberately one error for a wrong key, a bad tag or a bad padding, so a
 * sender cannot tell them apart (no decryption oracle).
 */
export class JweDecryptionFailedError extends HsmError {
  override readonly name = 'JweDecryptionFailedError';

  constructor() {
    super('the JWE could not be decrypted');
  }
}
