import pkcs11js from 'pkcs11js';
import { HsmError, JweDecryptionFailedError, MechanismNotSupportedError, TokenOperationError } from './errors.js';
import type { KeyDecryption } from './jwe-decryption.js';
import { currentHandle, type TokenKey } from './token-keys.js';
import { pkcs11Code, type TokenOperation, type TokenSession } from './token-session.js';

/** CKZ_DATA_SPECIFIED: pkcs11js 2.1 does not export it. */
const CKZ_DATA_SPECIFIED = 1;

/** The token refuses the mechanism or its parameters: a property of the HSM, not of the message. */
const MECHANISM_REFUSED: ReadonlySet<string> = new Set(['CKR_MECHANISM_INVALID', 'CKR_MECHANISM_PARAM_INVALID', 'CKR_ARGUMENTS_BAD', 'CKR_KEY_TYPE_INCONSISTENT']);

/**
 * What C_Decrypt says about a ciphertext it cannot decrypt (SoftHSM2 says CKR_GENERAL_ERROR).
 * Only these are "this message"; every other failure is the token's, reported to the operator.
 */
const CIPHERTEXT_REFUSED: ReadonlySet<string> = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR']);

const OAEP = {
  sha1: { hashAlg: pkcs11js.CKM_SHA_1, mgf: pkcs11js.CKG_MGF1_SHA1, jwa: 'RSA-OAEP' },
  sha256: { hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, jwa: 'RSA-OAEP-256' },
} as const;

/**
 * JWE key management with a private key that stays in the token: RSA-OAEP decryption of the CEK,
 * and ECDH1 derivation of the shared secret Z (the Concat KDF then runs outside the token, which
 * needs the HSM policy to let a derived session secret be read: CKA_SENSITIVE false).
 */
export class TokenKeyDecryption implements KeyDecryption {
  constructor(
    private readonly token: TokenSession,
    private readonly key: TokenKey,
  ) {}

  rsaOaepDecrypt(hash: 'sha1' | 'sha256', encryptedKey: Buffer): Buffer {
    const { hashAlg, mgf, jwa } = OAEP[hash];
    const parameter: pkcs11js.RsaOAEP = { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg, mgf, source: CKZ_DATA_SPECIFIED };
    const modulusBytes = Buffer.from(this.key.publicJwk.kty === 'RSA' ? this.key.publicJwk.n : '', 'base64url').length;
    // Public knowledge, checked before the token: a wrong length is the message's fault.
    if (encryptedKey.length !== modulusBytes) throw new JweDecryptionFailedError();
    return this.inToken(CIPHERTEXT_REFUSED, (p11, session) => {
      const handle = currentHandle(this.token, p11, session, this.key);
      this.init(jwa, () => p11.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter }, handle));
      return p11.C_Decrypt(session, encryptedKey, Buffer.alloc(modulusBytes));
    });
  }

  ecdhSharedSecret(peerPoint: Buffer): Buffer {
    const parameter: pkcs11js.ECDH1 = { type: pkcs11js.CK_PARAMS_EC_DH, kdf: pkcs11js.CKD_NULL, publicData: peerPoint };
    const coordinateBytes = (peerPoint.length - 1) / 2;
    // The point was checked (curve, length, on the curve) before it got here: any failure from
    // here on is the token's, not the message's.
    return this.inToken(new Set(), (p11, session) => {
      const handle = currentHandle(this.token, p11, session, this.key);
      const derived = this.init('ECDH-ES', () =>
        p11.C_DeriveKey(session, { mechanism: pkcs11js.CKM_ECDH1_DERIVE, parameter }, handle, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_SENSITIVE, value: false },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
          // No CKA_VALUE_LEN: SoftHSM2 silently truncates Z to a shorter one.
        ]),
      );
      try {
        const secret = p11.C_GetAttributeValue(session, derived, [{ type: pkcs11js.CKA_VALUE }])[0]!.value;
        if (secret.length !== coordinateBytes) throw new TokenOperationError(`ECDH gave a ${secret.length}-byte secret, expected ${coordinateBytes}`, undefined);
        return secret;
      } finally {
        p11.C_DestroyObject(session, derived);
      }
    });
  }

  /** Starting the operation: a refusal here is about the mechanism, whatever the message. */
  private init<T>(jwa: string, start: () => T): T {
    try {
      return start();
    } catch (error) {
      const code = pkcs11Code(error);
      if (code !== undefined && MECHANISM_REFUSED.has(code)) {
        throw new MechanismNotSupportedError(
          `the token refused ${jwa} for key "${this.key.label}" (${code}): it needs an HSM whose PKCS#11 library supports it`,
          code,
        );
      }
      throw error;
    }
  }

  /**
   * Runs on the token (a lost session is reopened once by TokenSession.run). A PKCS#11 failure in
   * `messageFaults` means this message cannot be decrypted; any other failure is the token's, and
   * is reported as such so that an HSM outage never reads as "bad message".
   */
  private inToken<T>(messageFaults: ReadonlySet<string>, operation: TokenOperation<T>): T {
    try {
      return this.token.run(operation);
    } catch (error) {
      if (error instanceof HsmError) throw error;
      const code = pkcs11Code(error);
      if (code !== undefined && messageFaults.has(code)) throw new JweDecryptionFailedError();
      throw new TokenOperationError(
        `the token failed with key "${this.key.label}" (kid ${this.key.kid}): ${code ?? (error instanceof Error ? error.message : String(error))}`,
        code,
      );
    }
  }
}
